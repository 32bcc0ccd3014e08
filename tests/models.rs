//! The installed model files are what our converters should have produced.

mod common;

use callqa::models::whisper_ggml::read_ggml_layout;

#[test]
fn converted_whisper_base_has_the_expected_header_and_tensor_table() {
    let dir = common::model_dir();
    let bytes = std::fs::read(dir.path.join("ggml-base.bin")).unwrap();
    assert_eq!(bytes.len(), 147_951_465);
    let (hp, n_tokens, tensors) = read_ggml_layout(&bytes).unwrap();
    assert_eq!(
        (
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer
        ),
        (51865, 1500, 512, 8, 6)
    );
    assert_eq!(
        (
            hp.n_text_ctx,
            hp.n_text_state,
            hp.n_text_head,
            hp.n_text_layer,
            hp.n_mels,
            hp.ftype
        ),
        (448, 512, 8, 6, 80, 1)
    );
    assert_eq!(n_tokens, 50257);
    assert_eq!(tensors.len(), 6 * 15 + 6 * 24 + 11);
    let conv1 = tensors
        .iter()
        .find(|t| t.name == "encoder.conv1.weight")
        .unwrap();
    assert_eq!((conv1.dims.clone(), conv1.ftype), (vec![3, 80, 512], 1));
}

#[test]
fn converted_tiny_en_is_english_only() {
    let dir = common::model_dir();
    let bytes = std::fs::read(dir.path.join("ggml-tiny.en.bin")).unwrap();
    let (hp, n_tokens, tensors) = read_ggml_layout(&bytes).unwrap();
    assert_eq!(
        (
            hp.n_vocab,
            hp.n_audio_state,
            hp.n_audio_layer,
            hp.n_text_layer
        ),
        (51864, 384, 4, 4)
    );
    assert_eq!(n_tokens, 50256);
    assert_eq!(tensors.len(), 4 * 15 + 4 * 24 + 11);
}
