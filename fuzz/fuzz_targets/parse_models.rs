//! Model-file parsers on arbitrary bytes: CTranslate2 → GGML, ONNX surgery, SentencePiece.
#![no_main]

use callqa::models::{embedding, whisper_ggml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let vocabulary: Vec<String> = (0..51865).map(|i| format!("t{i}")).collect();
    let _ = whisper_ggml::convert(data, &vocabulary, &mut std::io::sink());
    let _ = whisper_ggml::read_ggml_layout(data);
    if let Ok(stripped) = embedding::strip_tokenizer(data) {
        let _ = embedding::parse_sentencepiece(&stripped.sentencepiece);
    }
    if let Ok(sp) = embedding::parse_sentencepiece(data) {
        let _ = embedding::tokenizer_json(&sp);
    }
});
