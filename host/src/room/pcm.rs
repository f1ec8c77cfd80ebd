//! PCM helpers for transports that convert audio themselves (the sim room;
//! the FFI library converts inside libwebrtc).
//!
//! Samples are signed 16-bit and interleaved by channel, as in the WIT.
//! Conversion is deliberately simple (linear interpolation, channel
//! averaging): the sim room needs correct lengths and shapes, not studio
//! quality.

use crate::bindings::audio::AudioFormat;

/// Sample rates the WIT allows.
pub(crate) const SAMPLE_RATES: [u32; 4] = [8_000, 16_000, 24_000, 48_000];

/// Whether `format` is one the host accepts: a rate from [`SAMPLE_RATES`],
/// one or two channels.
pub(crate) fn supported(format: AudioFormat) -> bool {
    SAMPLE_RATES.contains(&format.sample_rate) && matches!(format.channels, 1 | 2)
}

/// Samples per channel in 10 ms of `format`.
pub(crate) fn samples_per_10ms(format: AudioFormat) -> usize {
    (format.sample_rate / 100) as usize
}

/// `samples` in format `from`, converted to format `to`.
pub(crate) fn convert(samples: &[i16], from: AudioFormat, to: AudioFormat) -> Vec<i16> {
    if from == to {
        return samples.to_vec();
    }
    let from_ch = from.channels.max(1) as usize;
    let to_ch = to.channels.max(1) as usize;
    // Mix down to mono frames, then resample, then spread to `to_ch`.
    let mono: Vec<i32> = samples
        .chunks(from_ch)
        .map(|frame| frame.iter().map(|&s| i32::from(s)).sum::<i32>() / frame.len() as i32)
        .collect();
    let out_len = (mono.len() as u64 * u64::from(to.sample_rate)
        / u64::from(from.sample_rate.max(1))) as usize;
    let mut out = Vec::with_capacity(out_len * to_ch);
    for i in 0..out_len {
        let pos = i as f64 * f64::from(from.sample_rate) / f64::from(to.sample_rate);
        let j = pos as usize;
        let frac = pos - j as f64;
        let a = f64::from(mono[j.min(mono.len() - 1)]);
        let b = f64::from(mono[(j + 1).min(mono.len() - 1)]);
        let value = (a + (b - a) * frac).round() as i16;
        out.extend(std::iter::repeat_n(value, to_ch));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MONO_48K: AudioFormat = AudioFormat {
        sample_rate: 48_000,
        channels: 1,
    };
    const STEREO_16K: AudioFormat = AudioFormat {
        sample_rate: 16_000,
        channels: 2,
    };

    #[test]
    fn converts_rate_and_channels() {
        let tone: Vec<i16> = (0..480).map(|i| (i % 100) as i16 * 100).collect();
        let out = convert(&tone, MONO_48K, STEREO_16K);
        // 10 ms at 16 kHz, two channels.
        assert_eq!(out.len(), 160 * 2);
        assert!(out.chunks(2).all(|f| f[0] == f[1]));
        let back = convert(&out, STEREO_16K, MONO_48K);
        assert_eq!(back.len(), 480);
        assert_eq!(convert(&tone, MONO_48K, MONO_48K), tone);
        assert!(convert(&[], MONO_48K, STEREO_16K).is_empty());
    }

    #[test]
    fn supported_formats() {
        assert!(supported(MONO_48K));
        assert!(supported(STEREO_16K));
        assert!(!supported(AudioFormat {
            sample_rate: 44_100,
            channels: 1
        }));
        assert!(!supported(AudioFormat {
            sample_rate: 48_000,
            channels: 3
        }));
    }
}
