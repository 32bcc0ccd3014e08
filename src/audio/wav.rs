//! WAV headers as recorders write them: a RIFF or data size that is short, 0, or 0xFFFFFFFF (a
//! stream that was never closed), or larger than the file. As ffmpeg does, the chunks that are
//! there are trusted and the sizes clamped to the file; the repair is reported, not hidden.

/// Fixes the sizes of a RIFF/WAVE file in place; says what was repaired, if anything.
pub fn repair(bytes: &mut [u8]) -> Option<String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let read = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut fixed = Vec::new();
    let riff = (bytes.len() - 8).min(u32::MAX as usize) as u32;
    if read(bytes, 4) != riff {
        fixed.push(format!(
            "RIFF size {} (the file holds {riff})",
            read(bytes, 4)
        ));
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
    }
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = read(bytes, at + 4) as usize;
        let available = bytes.len() - (at + 8);
        if &bytes[at..at + 4] == b"data" {
            if size == 0 || size > available {
                let clamped = available.min(u32::MAX as usize) as u32;
                fixed.push(format!("data size {size} (the file holds {clamped})"));
                bytes[at + 4..at + 8].copy_from_slice(&clamped.to_le_bytes());
            }
            break;
        }
        if size > available {
            break; // a broken chunk before the data: nothing to trust after it
        }
        at += 8 + size + size % 2;
    }
    (!fixed.is_empty())
        .then(|| format!("the WAV header's sizes were repaired: {}", fixed.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(riff: u32, data: u32, samples: usize) -> Vec<u8> {
        let mut b = b"RIFF".to_vec();
        b.extend(riff.to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend([1, 0, 1, 0]); // PCM, mono
        b.extend(16_000u32.to_le_bytes());
        b.extend(32_000u32.to_le_bytes());
        b.extend([2, 0, 16, 0]);
        b.extend(b"data");
        b.extend(data.to_le_bytes());
        b.extend(vec![0u8; samples * 2]);
        b
    }

    #[test]
    fn sizes_are_clamped_to_the_file_and_said() {
        let good = wav(36 + 200, 200, 100);
        assert_eq!(repair(&mut good.clone()), None);
        for (riff, data) in [
            (36 + 196, 200),
            (0, 0),
            (u32::MAX, u32::MAX),
            (36 + 200, 9_999),
        ] {
            let mut b = wav(riff, data, 100);
            let note = repair(&mut b).expect("repaired");
            assert!(
                note.starts_with("the WAV header's sizes were repaired"),
                "{note}"
            );
            assert_eq!(b, good, "riff {riff}, data {data}");
        }
        assert_eq!(repair(&mut b"RIFF".to_vec()), None);
        assert_eq!(repair(&mut b"fLaC\0\0\0\0\0\0\0\0".to_vec()), None);
    }
}
