"""A tiny wav2vec2 CTC phoneme model written to a folder, as an admin's download would be.

No weights are downloaded: the model is built from a config with random
weights, so its output is meaningless but its shapes, frame rate (320
samples = 20 ms) and files are those of the real checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

#: an IPA vocabulary like the espeak checkpoints' (pad = CTC blank, | = word gap)
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "p", "b", "m", "a", "i", "u", "o", "s", "t", "ə",
         "tɕʰ", "ʂ", "y", "aɪ", "ŋ"]


def build_tiny_model(folder: Path, *, layers: int = 2, phoneme_tokenizer: bool = False,
                     normalize: bool = True, local: bool = False, seed: int = 0) -> Path:
    """Save a random tiny Wav2Vec2ForCTC + feature extractor + tokenizer into ``folder``.

    ``local=True`` gives a model whose every output frame depends only on nearby
    audio (no attention layers, per-frame layer norms, no input normalisation),
    so windowed and one-pass recognition must agree exactly.
    """
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC, Wav2Vec2PhonemeCTCTokenizer)

    folder.mkdir(parents=True, exist_ok=True)
    vocab_path = folder / "vocab.json"
    vocab_path.write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}, ensure_ascii=False), "utf-8")
    config = Wav2Vec2Config(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, conv_dim=(8, 8, 8, 8), conv_kernel=(10, 8, 4, 4),
        conv_stride=(5, 4, 4, 4), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        pad_token_id=0, bos_token_id=1, eos_token_id=2,
        feat_extract_norm="layer" if local else "group",
    )
    if local:
        layers, normalize = 0, False
        config.num_hidden_layers = 0
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config).eval()
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0,
                             do_normalize=normalize, return_attention_mask=False).save_pretrained(folder)
    if phoneme_tokenizer:
        tokenizer = Wav2Vec2PhonemeCTCTokenizer(str(vocab_path), do_phonemize=False)
    else:
        tokenizer = Wav2Vec2CTCTokenizer(str(vocab_path), word_delimiter_token="|")
    tokenizer.save_pretrained(folder)
    return folder
