"""Configuration of the SER model: every hyper-parameter of the front end and the network."""

from transformers import PreTrainedConfig

# RAVDESS's emotions in the order of its file-name codes 01..08.
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


class SERConfig(PreTrainedConfig):
    r"""
    Configuration of [`SERForAudioClassification`]: a waveform-in, logits-out speech emotion classifier
    made of a torchaudio front end (log-mel or MFCC, optional deltas, normalization learned from the
    training set) and a small CNN.

    Args:
        sampling_rate (`int`, defaults to 16000):
            Rate of the waveform the model expects; the feature extractor and `ser.load_audio` resample to it.
        window_seconds (`float`, defaults to 3.0):
            Fixed analysis window. Shorter input is zero-padded at the end, longer input is cropped.
        trim_silence_db (`float` or `None`, defaults to 35.0):
            If set, the window starts at the first speech frame: the first frame whose energy is within this many
            dB of the clip's loudest frame, so leading silence does not use up the window.
        normalize_loudness (`bool`, defaults to `True`):
            Remove the DC offset and scale each clip so its loudest 25 ms frame has unit RMS, so the input
            gain (microphone, distance) does not change the features.
        features (`str`, defaults to `"mfcc"`):
            `"mfcc"` (cepstral coefficients, usually with `deltas`) or `"logmel"` (log mel filterbank energies).
            `docs/experiments.md` gives the measurements behind the default.
        n_mfcc (`int`, defaults to 40): number of MFCCs (ignored for `"logmel"`).
        n_mels (`int`, defaults to 64): number of mel bands (the MFCCs are computed from them).
        log_offset (`float`, defaults to 1e-3):
            Added to the mel energies before the log. It sets the floor about 70 dB below the loudest
            frame (after loudness normalization), so silence and padding do not dominate the input.
        n_fft (`int`, defaults to 400): FFT size (25 ms at 16 kHz).
        hop_length (`int`, defaults to 320): frame shift (20 ms at 16 kHz).
        deltas (`bool`, defaults to `True`): stack delta and delta-delta as extra input channels.
        encoder (`str`, defaults to `"cnn2d"`):
            `"cnn2d"`: 2-D CNN over the (coefficient x time) map.
            `"cnn1d"`: 1-D CNN over the time-averaged feature vector (the design most earlier RAVDESS
            projects used; kept as a baseline).
        channels (`list[int]`, defaults to `[32, 64, 128, 256]`): output channels of each conv block.
        kernel_size (`int`, defaults to 3): convolution kernel size.
        pooling (`str`, defaults to `"stats"`):
            How the CNN's frame sequence becomes one vector: `"mean"`, `"stats"` (mean and standard
            deviation) or `"attention"` (attentive statistics).
        dropout (`float`, defaults to 0.1): dropout before the classifier, and half of it after each block.
        spec_augment (`bool`, defaults to `True`): mask random bands and frames while training.
        freq_mask_param (`int`, defaults to 8): widest frequency mask, in coefficients (0: no frequency mask).
        time_mask_param (`int`, defaults to 20): widest time mask, in frames (0: no time mask).
        num_masks (`int`, defaults to 1): number of masks of each kind.
        test_time_speeds (`list[float]`, defaults to `[]`):
            At inference (eval mode) also score the clip played at each of these speeds (resampled, so tempo
            and pitch move together) and average the class probabilities with the clip's own; training is
            unaffected. The copies go through the network in one batch with the clip, so [0.9, 1.1] scores
            three windows per clip instead of one, so it is off by default to stay within the speed goals.
        id2label / label2id: class names; defaults to RAVDESS's 8 emotions in official order.
        calibration_temperature (`float`, defaults to 1.0):
            In eval mode the logits are divided by it, so that the softmax probabilities match how often the model
            is right (temperature scaling, fitted on held-out speakers after training). 1.0 leaves the raw softmax;
            argmax is unchanged either way.
        confidence_threshold (`float`, defaults to 0.0):
            `EmotionRecognizer`, the CLI and the app say "not sure" when the top calibrated probability is below
            it (and still show every probability). Chosen on held-out speakers after training; 0 always answers.
        training_data (`dict` or `None`, defaults to `None`): what trained the weights, filled in by training:
            corpus -> {"clips": n, "speakers": m}. Not a setting of the network; a record that travels with it.
    """

    model_type = "ser-cnn"

    def __init__(
        self,
        sampling_rate=16000,
        window_seconds=3.0,
        trim_silence_db=35.0,
        normalize_loudness=True,
        features="mfcc",
        n_mfcc=40,
        n_mels=64,
        log_offset=1e-3,
        n_fft=400,
        hop_length=320,
        deltas=True,
        encoder="cnn2d",
        channels=(32, 64, 128, 256),
        kernel_size=3,
        pooling="stats",
        dropout=0.1,
        spec_augment=True,
        freq_mask_param=8,
        time_mask_param=20,
        num_masks=1,
        test_time_speeds=(),
        calibration_temperature=1.0,
        confidence_threshold=0.0,
        training_data=None,
        id2label=None,
        label2id=None,
        **kwargs,
    ):
        if features not in ("mfcc", "logmel"):
            raise ValueError(f"features must be 'mfcc' or 'logmel', got {features!r}")
        if encoder not in ("cnn2d", "cnn1d"):
            raise ValueError(f"encoder must be 'cnn2d' or 'cnn1d', got {encoder!r}")
        if pooling not in ("mean", "stats", "attention"):
            raise ValueError(f"pooling must be 'mean', 'stats' or 'attention', got {pooling!r}")
        self.sampling_rate = sampling_rate
        self.window_seconds = window_seconds
        self.trim_silence_db = trim_silence_db
        self.normalize_loudness = normalize_loudness
        self.log_offset = log_offset
        self.features = features
        self.n_mfcc = n_mfcc
        self.n_mels = n_mels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.deltas = deltas
        self.encoder = encoder
        self.channels = list(channels)
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.dropout = dropout
        self.spec_augment = spec_augment
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.num_masks = num_masks
        if not calibration_temperature > 0:
            raise ValueError(f"calibration_temperature must be positive, got {calibration_temperature}")
        self.calibration_temperature = float(calibration_temperature)
        if not 0.0 <= confidence_threshold <= 1.0:
            raise ValueError(f"confidence_threshold must lie in [0, 1], got {confidence_threshold}")
        self.confidence_threshold = float(confidence_threshold)
        self.training_data = training_data
        self.test_time_speeds = [float(speed) for speed in test_time_speeds]
        if any(not 0.5 <= speed <= 2.0 for speed in self.test_time_speeds):
            raise ValueError(f"test_time_speeds must lie between 0.5 and 2.0, got {self.test_time_speeds}")
        if id2label is None:
            id2label = dict(enumerate(RAVDESS_EMOTIONS))
        id2label = {int(i): name for i, name in id2label.items()}
        label2id = {name: i for i, name in id2label.items()}
        super().__init__(id2label=id2label, label2id=label2id, **kwargs)

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def num_coefficients(self) -> int:
        return self.n_mfcc if self.features == "mfcc" else self.n_mels

    @property
    def num_feature_channels(self) -> int:
        return 3 if self.deltas else 1


__all__ = ["SERConfig", "RAVDESS_EMOTIONS"]
