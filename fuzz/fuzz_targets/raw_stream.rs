//! Headerless stream audio split anywhere: whole frames come out, in order, never a panic; the
//! same bytes in one piece or in many give the same samples.
#![no_main]

use callqa::audio::raw::{Encoding, RawDecoder, RawFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [kind, channels, split, rest @ ..] = data else { return };
    let encoding = [Encoding::Linear16, Encoding::Mulaw, Encoding::Alaw][usize::from(*kind % 3)];
    let Ok(format) = RawFormat::new(encoding, 8_000, usize::from(*channels % 10)) else { return };
    let whole = RawDecoder::new(format).push(rest);
    let mut pieces = RawDecoder::new(format);
    let mut joined = vec![Vec::new(); format.channels];
    for piece in rest.chunks(usize::from(*split).max(1)) {
        for (c, samples) in pieces.push(piece).into_iter().enumerate() {
            joined[c].extend(samples);
        }
    }
    assert_eq!(whole, joined);
    assert!(whole.iter().flatten().all(|s| (-1.0..=1.0).contains(s)));
});
