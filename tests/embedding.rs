//! The multilingual sentence encoder, run through ONNX Runtime with our rebuilt tokenizer.

mod common;

use callqa::service::engines;
use callqa::text::embed::{DIM, cosine};

#[test]
fn paraphrases_score_higher_than_unrelated_pairs_in_chinese_and_english() {
    let mut e = engines::embedder(&common::model_dir()).unwrap();
    let mut sim = |a: &str, b: &str| cosine(&e.embed(a).unwrap(), &e.embed(b).unwrap());

    let zh_para = sim("你们的产品价格是多少？", "这个方案大概要花多少钱？");
    let zh_unrel = sim(
        "你们的产品价格是多少？",
        "今天下午的天气很好，我们去公园散步吧。",
    );
    println!("zh paraphrase {zh_para:.3} vs unrelated {zh_unrel:.3}");
    assert!(zh_para > zh_unrel + 0.1);

    let en_para = sim(
        "How much does your product cost?",
        "What is the price of this solution?",
    );
    let en_unrel = sim(
        "How much does your product cost?",
        "The weather is nice, let's walk in the park.",
    );
    println!("en paraphrase {en_para:.3} vs unrelated {en_unrel:.3}");
    assert!(en_para > en_unrel + 0.1);

    // Multilingual: the same question across languages is closer than an unrelated sentence.
    let cross = sim("你们的产品价格是多少？", "How much does your product cost?");
    assert!(cross > zh_unrel, "cross-lingual {cross:.3}");
}

#[test]
fn embeddings_are_512_d_unit_vectors_and_wrap_text_in_bos_eos() {
    let mut e = engines::embedder(&common::model_dir()).unwrap();
    let v = e.embed("广州市房地产中介协会分析").unwrap();
    assert_eq!(v.len(), DIM);
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    let ids = e.token_ids("hello world").unwrap();
    assert_eq!(
        (ids[0], *ids.last().unwrap()),
        (1, 2),
        "<s> … </s>: {ids:?}"
    );
    // Empty text still embeds (just <s></s>) rather than failing.
    assert_eq!(e.embed("").unwrap().len(), DIM);
}
