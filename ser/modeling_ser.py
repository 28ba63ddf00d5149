"""The SER model: a 16 kHz waveform goes in, emotion logits come out.

This file and `configuration_ser.py` are copied beside the weights by `save_pretrained`, so they must
only import torch, torchaudio and transformers (no other module of the `ser` package).
"""

import torch
import torchaudio
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_ser import SERConfig


def deltas(x: torch.Tensor) -> torch.Tensor:
    """Regression deltas over the last (time) axis, 5-frame window: torchaudio's `compute_deltas`, written
    with slices because its grouped convolution cannot be exported to ONNX with a dynamic batch size."""
    padded = nn.functional.pad(x, (2, 2), mode="replicate")
    return (padded[..., 3:-1] - padded[..., 1:-3] + 2 * (padded[..., 4:] - padded[..., :-4])) / 10


def played_at(waveform: torch.Tensor, speed: float, sampling_rate: int) -> torch.Tensor:
    """(batch, samples) waveform as if played `speed` times as fast: resampled with torchaudio's windowed-sinc
    kernel, so tempo and pitch move together. Equal to `torchaudio.functional.resample(waveform,
    round(sampling_rate * speed), sampling_rate)`, whose output length uses float division, which torch.export
    cannot trace for a dynamic number of samples; the integer form below can."""
    resample = torchaudio.transforms.Resample(int(round(sampling_rate * speed)), sampling_rate)
    step, out = resample.orig_freq // resample.gcd, resample.new_freq // resample.gcd
    padded = nn.functional.pad(waveform, (resample.width, resample.width + step))
    resampled = nn.functional.conv1d(padded[:, None], resample.kernel.to(waveform), stride=step)
    length = waveform.shape[1]
    return resampled.transpose(1, 2).reshape(waveform.shape[0], -1)[:, : (out * length + step - 1) // step]


def remove_offset(waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, samples) waveforms minus their mean: a DC offset carries no emotion but would raise the low bands
    and hide the speech onset. With `attention_mask`, the mean is over each row's samples and padding stays 0."""
    # Summed in float64: runtimes that add float32 samples one by one (ONNX Runtime) would leave a residual offset.
    wide = waveform.double()
    if attention_mask is None:
        return waveform - wide.mean(dim=1, keepdim=True).to(waveform.dtype)
    mask = attention_mask.to(wide.dtype)
    mean = (wide * mask).sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp_min(1)
    return (waveform - mean.to(waveform.dtype)) * mask.to(waveform.dtype)


def frame_power(waveform: torch.Tensor, frame_length: int, hop_length: int) -> torch.Tensor:
    """Mean power of each frame of (batch, samples) waveforms, shape (batch, frames); a row shorter than one frame
    is one frame."""
    if waveform.shape[1] >= frame_length:
        return waveform.pow(2).unfold(1, frame_length, hop_length).mean(-1)
    return waveform.pow(2).mean(dim=1, keepdim=True)


def power_db(power: torch.Tensor) -> torch.Tensor:
    """`frame_power` in dB (dBFS for a waveform in [-1, 1])."""
    return 10 * torch.log10(power + 1e-10)


def speech_frames(levels_db: torch.Tensor, range_db: float) -> torch.Tensor:
    """The one definition of a speech frame, for the model's window and the library's speech checks: a frame whose
    `power_db` is within `range_db` of the loudest frame of its row."""
    return levels_db >= levels_db.amax(dim=-1, keepdim=True) - range_db


class SERFrontEnd(nn.Module):
    """Waveform -> normalized (channels, coefficients, frames) features over a fixed window.

    The normalization statistics are buffers filled from the training set (`set_normalization`) and
    saved with the weights, so the checkpoint needs no separate scaler file.
    """

    def __init__(self, config: SERConfig):
        super().__init__()
        self.config = config
        # from_pretrained builds modules on the meta device; torchaudio computes its filterbank while
        # constructing, which needs real tensors.
        with torch.device("cpu"):
            self.mel = torchaudio.transforms.MelSpectrogram(
                sample_rate=config.sampling_rate, n_fft=config.n_fft, hop_length=config.hop_length, n_mels=config.n_mels
            )
            if config.features == "mfcc":
                self.register_buffer("dct", torchaudio.functional.create_dct(config.n_mfcc, config.n_mels, norm="ortho"))
        shape = (config.num_feature_channels, config.num_coefficients)
        self.register_buffer("feature_mean", torch.zeros(shape))
        self.register_buffer("feature_std", torch.ones(shape))

    def select_window(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Crop or zero-pad each (batch, samples) row to the window: remove the DC offset, optionally scale the
        loudest frame to unit RMS and start at the first speech frame (`speech_frames`).

        `attention_mask` (1 for samples, 0 for padding) makes the offset that of each clip rather than of its
        zero-padded row, so a clip scores the same alone and in a batch."""
        config = self.config
        waveform = remove_offset(waveform, attention_mask)
        power = frame_power(waveform, config.n_fft, config.hop_length)
        if config.normalize_loudness:
            # The loudest frame, not the whole clip: padding and pauses would otherwise change the scale.
            waveform = waveform / power.amax(dim=1, keepdim=True).clamp_min(1e-10).sqrt()
        offsets = torch.zeros(waveform.shape[0], dtype=torch.long, device=waveform.device)
        if config.trim_silence_db is not None and waveform.shape[1] >= config.n_fft:
            offsets = speech_frames(power_db(power), config.trim_silence_db).float().argmax(dim=1) * config.hop_length
        window = config.window_samples
        padded = nn.functional.pad(waveform, (0, window))
        index = offsets[:, None] + torch.arange(window, device=waveform.device)[None, :]
        return padded.gather(1, index)

    def raw_features(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Un-normalized features, shape (batch, channels, coefficients, frames)."""
        return self.window_features(self.select_window(waveform, attention_mask))

    def window_features(self, window: torch.Tensor) -> torch.Tensor:
        """Un-normalized features of windows that `select_window` returned."""
        x = torch.log(self.mel(window) + self.config.log_offset)
        if self.config.features == "mfcc":
            x = torch.einsum("bmt,mc->bct", x, self.dct)
        if not self.config.deltas:
            return x.unsqueeze(1)
        d1 = deltas(x)
        d2 = deltas(d1)
        return torch.stack([x, d1, d2], dim=1)

    @torch.no_grad()
    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-5))

    def forward(self, waveform: torch.Tensor, attention_mask: torch.Tensor | None = None,
                windowed: bool = False) -> torch.Tensor:
        """Normalized features of waveforms, or with `windowed` of windows that `select_window` returned."""
        x = self.window_features(waveform) if windowed else self.raw_features(waveform, attention_mask)
        return (x - self.feature_mean[..., None]) / self.feature_std[..., None]


class ConvBlock(nn.Sequential):
    def __init__(self, dims: int, in_channels: int, out_channels: int, kernel_size: int, dropout: float):
        conv, norm, pool = (
            (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
        )
        super().__init__(
            conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            norm(out_channels),
            nn.ReLU(inplace=True),
            pool(2, ceil_mode=True),
            nn.Dropout(dropout),
        )


class TimePooling(nn.Module):
    """(batch, channels, frames) -> (batch, output_size)."""

    def __init__(self, config: SERConfig, channels: int):
        super().__init__()
        self.kind = config.pooling
        if self.kind == "attention":
            self.attention = nn.Sequential(nn.Conv1d(channels, channels // 2, 1), nn.Tanh(), nn.Conv1d(channels // 2, 1, 1))
        self.output_size = channels if self.kind == "mean" else 2 * channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mean":
            return x.mean(-1)
        weights = self.attention(x).softmax(-1) if self.kind == "attention" else None
        mean = x.mean(-1) if weights is None else (x * weights).sum(-1)
        # Centred, not E[x^2] - mean^2: over few frames that difference is mostly rounding error.
        centred = (x - mean[..., None]).pow(2)
        var = centred.mean(-1) if weights is None else (centred * weights).sum(-1)
        return torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=-1)


class SERPreTrainedModel(PreTrainedModel):
    config_class = SERConfig
    base_model_prefix = "ser"
    main_input_name = "input_values"

    @torch.no_grad()
    def _init_weights(self, module):
        # transformers 5 would otherwise apply its own defaults to these custom modules.
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            module.running_mean.zero_()
            module.running_var.fill_(1.0)
        elif isinstance(module, SERFrontEnd):
            module.feature_mean.zero_()
            module.feature_std.fill_(1.0)
            # The filterbank and DCT matrices are fixed, not learned: recompute them.
            fresh = SERFrontEnd(module.config)
            for name, buffer in fresh.named_buffers():
                if not name.startswith("feature_"):
                    module.get_buffer(name).copy_(buffer)


class SERForAudioClassification(SERPreTrainedModel):
    """Speech emotion classifier: `SERFrontEnd` -> CNN (2-D over the feature map, or 1-D over the
    time-averaged features) -> pooling over time -> linear layer over `config.num_labels` classes.

    Args:
        config ([`SERConfig`]): the model configuration.
    """

    def __init__(self, config: SERConfig):
        super().__init__(config)
        self.front_end = SERFrontEnd(config)
        masks = []
        for _ in range(config.num_masks):
            if config.freq_mask_param:
                masks.append(torchaudio.transforms.FrequencyMasking(config.freq_mask_param, iid_masks=True))
            if config.time_mask_param:
                masks.append(torchaudio.transforms.TimeMasking(config.time_mask_param, iid_masks=True))
        self.spec_augment = nn.Sequential(*masks)
        dims = 2 if config.encoder == "cnn2d" else 1
        in_channels = config.num_feature_channels if dims == 2 else 1
        blocks = []
        for out_channels in config.channels:
            blocks.append(ConvBlock(dims, in_channels, out_channels, config.kernel_size, config.dropout / 2))
            in_channels = out_channels
        self.encoder = nn.Sequential(*blocks)
        self.pooling = TimePooling(config, in_channels) if dims == 2 else None
        pooled = self.pooling.output_size if dims == 2 else in_channels
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(pooled, config.num_labels))
        self.post_init()

    def embed(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
              windowed: bool = False) -> torch.Tensor:
        x = self.front_end(input_values, attention_mask, windowed)
        if self.training and self.config.spec_augment:
            x = self.spec_augment(x)
        if self.config.encoder == "cnn1d":
            # Average over time, then convolve along the feature vector, as the classic MFCC models did.
            return self.encoder(x.mean(-1).flatten(1).unsqueeze(1)).mean(-1)
        x = self.encoder(x)
        return self.pooling(x.mean(2))  # the frequency rows the blocks leave are averaged

    def forward(self, input_values, attention_mask=None, labels=None, **kwargs) -> SequenceClassifierOutput:
        r"""
        input_values (`torch.FloatTensor` of shape `(batch, samples)`):
            Mono waveform at `config.sampling_rate`, as returned by the feature extractor.
        attention_mask (`torch.LongTensor` of shape `(batch, samples)`, *optional*): 1 for samples, 0 for the
            zero padding of a batch; it keeps a clip's DC offset its own, so it scores the same alone or batched.
        labels (`torch.LongTensor` of shape `(batch,)`, *optional*): class ids; if given, the
            cross-entropy loss is returned too.

        With `config.test_time_speeds` set, in eval mode the logits are the log of the class probabilities
        averaged over the clip and its faster and slower copies (`test_time_average`): their softmax is that
        average. In eval mode the logits are divided by `config.calibration_temperature` (each copy's, before the
        average).
        """
        if self.training or not self.config.test_time_speeds:
            logits = self.classifier(self.embed(input_values, attention_mask))
            if not self.training:
                logits = logits / self.config.calibration_temperature
        else:
            logits = self.test_time_average(remove_offset(input_values, attention_mask))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def test_time_average(self, input_values: torch.Tensor) -> torch.Tensor:
        """Log of the calibrated class probabilities averaged over the clip and its copies at
        `config.test_time_speeds` (softmax of the result gives the averaged probabilities back)."""
        versions = [input_values] + [played_at(input_values, speed, self.config.sampling_rate)
                                     for speed in self.config.test_time_speeds]
        # Each version picks its own window (onset, loudness), then all windows, of equal length, go through the
        # network as one batch: as exact as separate passes, and cheaper.
        windows = torch.cat([self.front_end.select_window(v) for v in versions])
        logits = self.classifier(self.embed(windows, windowed=True)) / self.config.calibration_temperature
        probabilities = logits.softmax(-1)
        return probabilities.view(len(versions), input_values.shape[0], -1).mean(0).log()


__all__ = ["SERForAudioClassification", "SERPreTrainedModel", "SERFrontEnd", "frame_power", "power_db",
           "remove_offset", "speech_frames"]
