//! Any bytes given to the decoder: an error or audio, never a panic, a hang or a huge allocation.
#![no_main]

use callqa::audio::StreamDecoder;
use callqa::audio::resample::StreamResampler;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut decoder) = StreamDecoder::from_bytes(data.to_vec()) else { return };
    let mut resampler = StreamResampler::new(decoder.sample_rate()).ok();
    // Bounded: a fuzzed header may declare hours of audio.
    for _ in 0..256 {
        match decoder.next_chunk() {
            Ok(Some(chunk)) => {
                assert_eq!(chunk.len(), decoder.channels());
                if let Some(r) = resampler.as_mut() {
                    let _ = r.push(&chunk[0]);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
