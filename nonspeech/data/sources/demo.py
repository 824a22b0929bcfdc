"""Synthesise a small, deterministic seven-class dataset of non-speech-like sounds for offline demos."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)
MIN_SECONDS, MAX_SECONDS = 0.5, 6.0
TEST_SHARE = 0.2
AUGMENTATIONS = ("gain", "noise", "shift")


def times(n: int, rate: int) -> np.ndarray:
    """Sample times in seconds."""
    return np.arange(n) / rate


def shaped_noise(rng: np.random.Generator, n: int, rate: int, low: float, high: float, tilt: float) -> np.ndarray:
    """White noise band-limited to [low, high] Hz with a power-law spectral tilt (amplitude ~ f**tilt)."""
    size = 1 << (n - 1).bit_length()  # a power of two keeps the FFT fast
    freqs = np.fft.rfftfreq(size, 1 / rate)
    gain = np.where((freqs >= low) & (freqs <= high), (np.maximum(freqs, 1.0) / 1000.0) ** tilt, 0.0)
    return np.fft.irfft(np.fft.rfft(rng.standard_normal(size)) * gain, size)[:n]


def harmonic(f0: np.ndarray, rate: int, rolloff: float, count: int = 12) -> np.ndarray:
    """A harmonic tone following the per-sample pitch f0; harmonic k has amplitude rolloff**k, none above 0.45*rate."""
    step = np.exp(2j * np.pi * np.cumsum(f0) / rate)
    partial, out = step.copy(), np.zeros(len(f0))
    for k in range(min(count, int(0.45 * rate / f0.max()))):
        out += rolloff**k * partial.imag
        partial *= step  # now step**(k+2): repeated multiplication is cheaper than sin
    return out


def bursts(n: int, rate: int, starts: np.ndarray, attack: float, decay: float) -> np.ndarray:
    """Envelope of bursts with a linear attack and an exponential decay, starting at `starts` seconds."""
    env = np.zeros(n)
    for start in starts:
        since = times(n, rate) - start
        env += np.where(since < 0, 0.0, np.where(since < attack, since / attack, np.exp(-(since - attack) / decay)))
    return env


def cough(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """One to three sharp bursts of dark noise."""
    starts = np.sort(rng.uniform(0.0, max(n / rate - 0.3, 0.01), rng.integers(1, 4)))
    return bursts(n, rate, starts, 0.01, rng.uniform(0.04, 0.09)) * shaped_noise(rng, n, rate, 150, 4000, -1.0)


def sneeze(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A breathy build-up, then one explosive burst of bright noise."""
    t = times(n, rate)
    peak = rng.uniform(0.3, 0.6) * n / rate
    build = 0.25 * (t < peak) * (t / peak) ** 2 * shaped_noise(rng, n, rate, 300, 3000, 0.0)
    burst = bursts(n, rate, np.array([peak]), 0.005, rng.uniform(0.12, 0.2))
    return build + burst * shaped_noise(rng, n, rate, 2000, 12000, 0.5)


def breath(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Slow swells of soft filtered noise, like inhaling and exhaling."""
    swell = np.sin(np.pi * (times(n, rate) / rng.uniform(1.2, 3.0) + rng.uniform())) ** 2
    return swell * shaped_noise(rng, n, rate, 300, 5000, -0.5)


def yawn(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A slow, falling harmonic glide under one smooth swell."""
    f0 = rng.uniform(250, 350) * rng.uniform(0.35, 0.55) ** np.linspace(0.0, 1.0, n)
    return np.hanning(n) * (harmonic(f0, rate, 0.55) + 0.1 * shaped_noise(rng, n, rate, 200, 3000, -1.0))


def crying(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Repeated high-pitched wails whose pitch rises, then falls."""
    phase = (times(n, rate) / rng.uniform(0.5, 1.1)) % 1.0
    f0 = rng.uniform(380, 550) * (1 + 0.3 * np.sin(np.pi * phase))
    return np.sqrt(np.sin(np.pi * phase)) * harmonic(f0, rate, 0.7)


def laugh(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Rhythmic voiced "ha" pulses, four to six a second, fading out."""
    t = times(n, rate)
    phase = (t * rng.uniform(4.0, 6.0)) % 1.0
    env = np.where(phase < 0.55, np.sin(np.pi * phase / 0.55), 0.0) * np.exp(-t / rng.uniform(2.0, 5.0))
    f0 = rng.uniform(180, 300) * (1 - 0.15 * t / t[-1])
    return env * (harmonic(f0, rate, 0.6) + 0.3 * shaped_noise(rng, n, rate, 500, 5000, 0.0))


def screaming(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A loud, high, bright harmonic tone with vibrato."""
    t = times(n, rate)
    f0 = rng.uniform(800, 1200) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * t))
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    return fade * (harmonic(f0, rate, 0.8) + 0.05 * shaped_noise(rng, n, rate, 1000, 8000, 0.0))


Synth = Callable[[np.random.Generator, int, int], np.ndarray]
SYNTHS: dict[str, tuple[Synth, tuple[float, float]]] = {  # class -> (synthesiser, peak level range)
    "breath": (breath, (0.1, 0.4)),
    "cough": (cough, (0.3, 0.9)),
    "crying": (crying, (0.3, 0.8)),
    "laugh": (laugh, (0.3, 0.8)),
    "screaming": (screaming, (0.7, 0.95)),
    "sneeze": (sneeze, (0.4, 0.95)),
    "yawn": (yawn, (0.2, 0.7)),
}


def clip_format(index: int) -> tuple[int, int, str]:
    """Sample rate, channel count and subtype of the index-th source clip, cycled so every variant occurs."""
    subtype = {3: "FLOAT", 8: "PCM_24"}.get(index % 11, "PCM_16")
    return SAMPLE_RATES[index % len(SAMPLE_RATES)], 2 if index % 3 == 1 else 1, subtype


def render(rng: np.random.Generator, label: str, seconds: float, rate: int, channels: int) -> np.ndarray:
    """One source clip of `label` at a random level over a faint noise floor; stereo adds a delayed copy."""
    synth, (low, high) = SYNTHS[label]
    n = int(seconds * rate)
    mono = synth(rng, n, rate)
    mono = mono / np.abs(mono).max() * rng.uniform(low, high) + 1e-3 * rng.standard_normal(n)
    if channels == 1:
        return mono
    return np.stack([mono, 0.8 * np.roll(mono, int(rng.integers(1, 40)))], axis=1)


def augment(rng: np.random.Generator, clip: np.ndarray, kind: str, rate: int) -> np.ndarray:
    """An augmented copy: a gain change, added noise or a circular time shift, kept below full scale."""
    if kind == "gain":
        out = clip * rng.uniform(0.3, 1.5)
    elif kind == "noise":
        out = clip + rng.standard_normal(clip.shape) * np.sqrt(np.mean(clip**2)) * 10 ** (-rng.uniform(10, 25) / 20)
    else:
        out = np.roll(clip, int(rng.uniform(0.05, 0.3) * rate), axis=0)
    return out / max(1.0, np.abs(out).max() / 0.99)


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str) -> None:
    """Write a WAV whose bytes depend only on its samples: libsndfile stamps float files' PEAK chunk with the time."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype=subtype, format="WAV")
    raw = bytearray(buffer.getvalue())
    peak = raw.find(b"PEAK", 0, 128)
    if peak >= 0:
        raw[peak + 12 : peak + 16] = bytes(4)  # after chunk id, size and version comes the timestamp
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(raw))


def generate_demo(out_dir: Path, clips_per_class: int, seed: int) -> None:
    """Write out_dir/{train,test}/<class>/*.wav and out_dir/labels.csv (path,label,group,split).
    The same seed gives byte-identical files."""
    if clips_per_class < 2:
        raise ValueError(f"clips_per_class must be at least 2 (a train and a test group), got {clips_per_class}")
    out_dir, rng = Path(out_dir), np.random.default_rng(seed)
    n_test = max(1, round(TEST_SHARE * clips_per_class))
    rows = []
    for class_index, label in enumerate(SYNTHS):
        test_ids = set(rng.choice(clips_per_class, n_test, replace=False).tolist())
        spread = (rng.permutation(clips_per_class) + rng.uniform(size=clips_per_class)) / clips_per_class
        for clip_id in range(clips_per_class):
            rate, channels, subtype = clip_format(class_index * clips_per_class + clip_id)
            group = f"{label}_{clip_id:03d}"
            split = "test" if clip_id in test_ids else "train"
            clip = render(rng, label, MIN_SECONDS + (MAX_SECONDS - MIN_SECONDS) * spread[clip_id], rate, channels)
            kinds = [str(kind) for kind in rng.choice(AUGMENTATIONS, rng.integers(1, 3), replace=False)]
            versions = [(group, clip)] + [(f"{group}_{kind}", augment(rng, clip, kind, rate)) for kind in kinds]
            for stem, samples in versions:
                relative = f"{split}/{label}/{stem}.wav"
                write_wav(out_dir / relative, samples, rate, subtype)
                rows.append((relative, label, group, split))
    table = pd.DataFrame(rows, columns=["path", "label", "group", "split"]).sort_values("path")
    table.to_csv(out_dir / "labels.csv", index=False, lineterminator="\n")
