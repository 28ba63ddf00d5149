"""Speech emotion recognition: a small CNN over log-mel or MFCC features, packaged as a transformers audio classifier.

Importing `ser` registers the model with transformers' Auto classes, so `AutoConfig`,
`AutoModelForAudioClassification`, `AutoFeatureExtractor` and `pipeline("audio-classification")`
load its checkpoints without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

from .audio import AudioError, NoSpeechError, load_audio
from .configuration_ser import RAVDESS_EMOTIONS, SERConfig
from .inference import DEFAULT_MODEL, EmotionRecognizer, ModelLoadError, load_model
from .modeling_ser import SERForAudioClassification



class LegacySERConfig(SERConfig):
    """`SERConfig` under the model type that earlier checkpoints were saved with, so they still load."""

    model_type = "ser-mfcc-cnn"


class LegacySERForAudioClassification(SERForAudioClassification):
    """`SERForAudioClassification` for a `LegacySERConfig`."""

    config_class = LegacySERConfig


for config_class, model_class in ((SERConfig, SERForAudioClassification),
                                  (LegacySERConfig, LegacySERForAudioClassification)):
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModelForAudioClassification.register(config_class, model_class, exist_ok=True)
# save_pretrained copies the code files and writes auto_map, so trust_remote_code loads work anywhere.
SERConfig.register_for_auto_class()
SERForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")


def new_feature_extractor(config: SERConfig) -> Wav2Vec2FeatureExtractor:
    """The stock feature extractor for this model: it only checks the rate and pads a batch with zeros,
    with an attention mask so that the model treats each clip alone; the model itself computes the features."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=config.sampling_rate,
        padding_value=0.0,
        do_normalize=False,
        return_attention_mask=True,
    )


__all__ = [
    "AudioError",
    "DEFAULT_MODEL",
    "EmotionRecognizer",
    "ModelLoadError",
    "NoSpeechError",
    "RAVDESS_EMOTIONS",
    "SERConfig",
    "SERForAudioClassification",
    "load_audio",
    "load_model",
    "new_feature_extractor",
]
