//! PCM helpers of the pipeline: WAV files for batch speech-to-text, raw
//! s16le bytes from speech providers, and the format conversions a
//! pre-connect audio buffer needs.
//!
//! Room audio needs none of this: the host converts it to the format a
//! guest subscribes or publishes in. What arrives from elsewhere (a TTS
//! provider's bytes, a client's pre-connect buffer) comes here.
//!
//! Invariants: bytes are little-endian signed 16-bit; an odd byte at the
//! end of a chunk is kept for the next ([`S16Decoder`]), never dropped or
//! misaligned. Plain Rust, tested natively.

/// A RIFF/WAVE file holding `samples` (mono, s16le, at `sample_rate`), as
/// `/v1/audio/transcriptions` takes it.
pub fn wav(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// s16le bytes arriving in chunks of any size, as samples.
#[derive(Debug, Default)]
pub struct S16Decoder {
    odd: Option<u8>,
}

impl S16Decoder {
    /// A decoder at a sample boundary.
    pub fn new() -> Self {
        Self::default()
    }

    /// The samples `bytes` completes; a trailing odd byte waits for the
    /// next chunk.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<i16> {
        let mut samples = Vec::with_capacity(bytes.len() / 2 + 1);
        let mut rest = bytes;
        if let Some(low) = self.odd.take() {
            match rest.split_first() {
                Some((&high, tail)) => {
                    samples.push(i16::from_le_bytes([low, high]));
                    rest = tail;
                }
                None => self.odd = Some(low),
            }
        }
        let mut pairs = rest.chunks_exact(2);
        samples.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
        if let [last] = pairs.remainder() {
            self.odd = Some(*last);
        }
        samples
    }
}

/// Interleaved `channels`-channel audio as mono (the channels' mean).
pub fn to_mono(samples: &[i16], channels: u32) -> Vec<i16> {
    let channels = channels.max(1) as usize;
    if channels == 1 {
        return samples.to_vec();
    }
    samples
        .chunks_exact(channels)
        .map(|frame| (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
        .collect()
}

/// Mono audio from `from` Hz to `to` Hz by linear interpolation: good
/// enough for speech recognition of a short buffer (the room's own audio
/// is resampled by the host).
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || from == 0 || to == 0 || samples.is_empty() {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let j = pos as usize;
            let frac = pos - j as f64;
            let a = f64::from(samples[j]);
            let b = f64::from(*samples.get(j + 1).unwrap_or(&samples[j]));
            (a + (b - a) * frac).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_header_says_mono_s16le_at_the_rate() {
        let file = wav(&[1, -2, 3], 16_000);
        assert_eq!(file.len(), 44 + 6);
        assert_eq!(&file[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(file[4..8].try_into().unwrap()), 36 + 6);
        assert_eq!(&file[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([file[20], file[21]]), 1, "PCM");
        assert_eq!(u16::from_le_bytes([file[22], file[23]]), 1, "mono");
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 16_000);
        assert_eq!(u16::from_le_bytes([file[34], file[35]]), 16, "bits");
        assert_eq!(&file[36..40], b"data");
        assert_eq!(u32::from_le_bytes(file[40..44].try_into().unwrap()), 6);
        assert_eq!(&file[44..], &[1, 0, 0xfe, 0xff, 3, 0]);
    }

    #[test]
    fn odd_chunks_keep_samples_aligned() {
        let samples: Vec<i16> = (-50..50).map(|i| i * 300).collect();
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        for chunk in [1, 3, 7, 64] {
            let mut decoder = S16Decoder::new();
            let decoded: Vec<i16> = bytes.chunks(chunk).flat_map(|c| decoder.feed(c)).collect();
            assert_eq!(decoded, samples, "chunks of {chunk}");
        }
        assert!(S16Decoder::new().feed(&[]).is_empty());
    }

    #[test]
    fn mono_and_resampling() {
        assert_eq!(to_mono(&[100, 300, -10, -30], 2), [200, -20]);
        assert_eq!(to_mono(&[5, 6], 1), [5, 6]);
        let ramp: Vec<i16> = (0..480).map(|i| i * 10).collect();
        let down = resample(&ramp, 48_000, 16_000);
        assert_eq!(down.len(), 160);
        assert_eq!(down[1], 30);
        let up = resample(&[0, 100], 8_000, 16_000);
        assert_eq!(up, [0, 50, 100, 100]);
        assert_eq!(resample(&ramp, 16_000, 16_000), ramp);
    }
}
