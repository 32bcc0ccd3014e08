//! Prepares the multilingual sentence-encoder (Universal Sentence Encoder multilingual, ONNX int8).
//!
//! The shipped graph starts with a `SentencepieceTokenizer` node, a custom op from
//! onnxruntime-extensions that plain ONNX Runtime cannot run. We cut that node out, expose its two
//! outputs as the graph inputs `token_ids` (int32 [n]) and `row_splits` (int64 [batch + 1]), and
//! rebuild the same tokenizer as a `tokenizer.json` from the SentencePiece model that the node carries
//! in its `model` attribute.

use super::protowire::{Value, WireError, Writer, fields};
use serde_json::json;

pub const TOKEN_IDS: &str = "token_ids";
pub const ROW_SPLITS: &str = "row_splits";
const TOKENIZER_OP: &str = "SentencepieceTokenizer";
const CONTRIB_DOMAIN: &str = "ai.onnx.contrib";

// ONNX field numbers (onnx.proto).
const MODEL_GRAPH: u32 = 7;
const MODEL_OPSET_IMPORT: u32 = 8;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const TENSOR_NAME: u32 = 8;
const GRAPH_INPUT: u32 = 11;
const GRAPH_VALUE_INFO: u32 = 13;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_OP_TYPE: u32 = 4;
const NODE_ATTRIBUTE: u32 = 5;
const ATTR_NAME: u32 = 1;
const ATTR_S: u32 = 4;
const NAMED_NAME: u32 = 1; // ValueInfoProto.name, OperatorSetIdProto.domain
const ELEM_INT32: u64 = 6;
const ELEM_INT64: u64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum SurgeryError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the model has no {0}")]
    Missing(&'static str),
}

/// The graph without its tokenizer node, and the SentencePiece model that node carried.
pub struct Stripped {
    pub onnx: Vec<u8>,
    pub sentencepiece: Vec<u8>,
}

struct TokenizerNode<'a> {
    inputs: Vec<&'a str>,
    outputs: Vec<&'a str>,
    sentencepiece: &'a [u8],
}

fn find_tokenizer_node(node: &[u8]) -> Result<Option<TokenizerNode<'_>>, WireError> {
    let mut is_tokenizer = false;
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut sentencepiece = None;
    for f in fields(node) {
        let f = f?;
        match f.number {
            NODE_OP_TYPE => is_tokenizer = f.value.str() == Some(TOKENIZER_OP),
            NODE_INPUT => inputs.push(f.value.str().unwrap_or_default()),
            NODE_OUTPUT => outputs.push(f.value.str().unwrap_or_default()),
            NODE_ATTRIBUTE => {
                let attr = f.value.bytes().unwrap_or_default();
                let mut name = None;
                let mut s = None;
                for a in fields(attr) {
                    let a = a?;
                    match a.number {
                        ATTR_NAME => name = a.value.str(),
                        ATTR_S => s = a.value.bytes(),
                        _ => {}
                    }
                }
                if name == Some("model") {
                    sentencepiece = s;
                }
            }
            _ => {}
        }
    }
    Ok(match (is_tokenizer, sentencepiece) {
        (true, Some(sentencepiece)) if outputs.len() == 2 => Some(TokenizerNode {
            inputs,
            outputs,
            sentencepiece,
        }),
        _ => None,
    })
}

/// Field 1 of a message as a string: the name of a ValueInfoProto, the domain of an opset import.
fn first_name(msg: &[u8]) -> Result<Option<&str>, WireError> {
    for f in fields(msg) {
        let f = f?;
        if f.number == NAMED_NAME {
            return Ok(f.value.str());
        }
    }
    Ok(None)
}

/// A dimension of a tensor type: a fixed size, or a named (dynamic) one.
pub enum Dim<'a> {
    Fixed(usize),
    Named(&'a str),
}

/// An ONNX ValueInfoProto: a tensor's name, element type and shape.
pub fn value_info(name: &str, elem_type: u64, dims: &[Dim<'_>]) -> Vec<u8> {
    let mut shape = Writer::default();
    for d in dims {
        let mut dim = Writer::default();
        match d {
            Dim::Fixed(v) => dim.uint(1, *v as u64),     // dim_value
            Dim::Named(n) => dim.bytes(2, n.as_bytes()), // dim_param
        }
        shape.bytes(1, &dim.buf);
    }
    let mut tensor = Writer::default();
    tensor.uint(1, elem_type);
    tensor.bytes(2, &shape.buf);
    let mut ty = Writer::default();
    ty.bytes(1, &tensor.buf);
    let mut info = Writer::default();
    info.bytes(1, name.as_bytes());
    info.bytes(2, &ty.buf);
    info.buf
}

/// A ValueInfoProto for a 1-D tensor of unknown length.
fn vector_input(name: &str, elem_type: u64) -> Vec<u8> {
    value_info(name, elem_type, &[Dim::Named(&format!("{name}_len"))])
}

/// Rewrites a node so that inputs naming the tokenizer outputs name our new graph inputs.
fn rename_node_inputs(node: &[u8], renames: &[(&str, &str)]) -> Result<Vec<u8>, WireError> {
    let mut w = Writer::default();
    for f in fields(node) {
        let f = f?;
        let renamed = (f.number == NODE_INPUT)
            .then(|| f.value.str())
            .flatten()
            .and_then(|name| renames.iter().find(|(from, _)| *from == name));
        match renamed {
            Some((_, to)) => w.bytes(NODE_INPUT, to.as_bytes()),
            None => w.raw(f.raw),
        }
    }
    Ok(w.buf)
}

/// Every name that a node other than the tokenizer reads.
fn names_read_elsewhere(graph: &[u8]) -> Result<Vec<&str>, WireError> {
    let mut names = Vec::new();
    for f in fields(graph) {
        let f = f?;
        let body = f.value.bytes().unwrap_or_default();
        if f.number == GRAPH_NODE && find_tokenizer_node(body)?.is_none() {
            for nf in fields(body) {
                let nf = nf?;
                if nf.number == NODE_INPUT {
                    names.extend(nf.value.str());
                }
            }
        }
    }
    Ok(names)
}

fn strip_graph<'a>(graph: &'a [u8]) -> Result<(Vec<u8>, &'a [u8]), SurgeryError> {
    let mut tokenizer = None;
    for f in fields(graph) {
        let f = f?;
        if f.number != GRAPH_NODE {
            continue;
        }
        if let Some(node) = find_tokenizer_node(f.value.bytes().unwrap_or_default())? {
            tokenizer = Some(node);
            break;
        }
    }
    let tokenizer = tokenizer.ok_or(SurgeryError::Missing("SentencepieceTokenizer node"))?;
    // Constants that only configured the tokenizer (nbest, alpha, add_bos, …) go with it.
    let read_elsewhere = names_read_elsewhere(graph)?;
    let tokenizer_only: Vec<&str> = tokenizer
        .inputs
        .iter()
        .copied()
        .filter(|i| !read_elsewhere.contains(i))
        .collect();
    let tensor_name = |t: &'a [u8]| -> Result<Option<&'a str>, WireError> {
        for f in fields(t) {
            let f = f?;
            if f.number == TENSOR_NAME {
                return Ok(f.value.str());
            }
        }
        Ok(None)
    };
    let renames = [
        (tokenizer.outputs[0], TOKEN_IDS),
        (tokenizer.outputs[1], ROW_SPLITS),
    ];

    let mut w = Writer::default();
    let mut inputs_written = false;
    for f in fields(graph) {
        let f = f?;
        let body = f.value.bytes().unwrap_or_default();
        match f.number {
            GRAPH_NODE if find_tokenizer_node(body)?.is_some() => {}
            GRAPH_NODE => w.bytes(GRAPH_NODE, &rename_node_inputs(body, &renames)?),
            // The string input fed only the tokenizer: replace it with the tokenizer's outputs.
            GRAPH_INPUT => {
                if !inputs_written {
                    w.bytes(GRAPH_INPUT, &vector_input(TOKEN_IDS, ELEM_INT32));
                    w.bytes(GRAPH_INPUT, &vector_input(ROW_SPLITS, ELEM_INT64));
                    inputs_written = true;
                }
            }
            GRAPH_INITIALIZER
                if tensor_name(body)?.is_some_and(|n| tokenizer_only.contains(&n)) => {}
            GRAPH_VALUE_INFO
                if first_name(body)?
                    .is_some_and(|n| renames.iter().any(|(from, _)| *from == n)) => {}
            _ => w.raw(f.raw),
        }
    }
    if !inputs_written {
        return Err(SurgeryError::Missing("graph input"));
    }
    Ok((w.buf, tokenizer.sentencepiece))
}

/// Cuts the tokenizer node out of the sentence-encoder graph.
pub fn strip_tokenizer(model: &[u8]) -> Result<Stripped, SurgeryError> {
    let mut w = Writer::default();
    let mut sentencepiece = None;
    for f in fields(model) {
        let f = f?;
        let body = f.value.bytes().unwrap_or_default();
        match f.number {
            MODEL_GRAPH => {
                let (graph, spm) = strip_graph(body)?;
                sentencepiece = Some(spm.to_vec());
                w.bytes(MODEL_GRAPH, &graph);
            }
            // No node uses the custom-op domain any more; ONNX Runtime would look for it.
            MODEL_OPSET_IMPORT if first_name(body)? == Some(CONTRIB_DOMAIN) => {}
            _ => w.raw(f.raw),
        }
    }
    Ok(Stripped {
        onnx: w.buf,
        sentencepiece: sentencepiece.ok_or(SurgeryError::Missing("graph"))?,
    })
}

/// The pieces of a SentencePiece `ModelProto` that a Unigram tokenizer needs.
#[derive(Debug)]
pub struct SentencePieceModel {
    pub pieces: Vec<(String, f32, PieceType)>,
    pub precompiled_charsmap: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    Other,
}

pub fn parse_sentencepiece(model: &[u8]) -> Result<SentencePieceModel, SurgeryError> {
    let mut pieces = Vec::new();
    let mut precompiled_charsmap = Vec::new();
    for f in fields(model) {
        let f = f?;
        match (f.number, f.value) {
            (1, Value::Bytes(piece)) => {
                let (mut text, mut score, mut kind) = (String::new(), 0.0f32, PieceType::Normal);
                for p in fields(piece) {
                    let p = p?;
                    match (p.number, p.value) {
                        (1, v) => text = v.str().unwrap_or_default().to_owned(),
                        (2, Value::Fixed32(bits)) => score = f32::from_bits(bits),
                        (3, Value::Varint(t)) => {
                            kind = match t {
                                1 => PieceType::Normal,
                                2 => PieceType::Unknown,
                                3 => PieceType::Control,
                                _ => PieceType::Other,
                            }
                        }
                        _ => {}
                    }
                }
                pieces.push((text, score, kind));
            }
            (3, Value::Bytes(spec)) => {
                for s in fields(spec) {
                    let s = s?;
                    if s.number == 2 {
                        precompiled_charsmap = s.value.bytes().unwrap_or_default().to_vec();
                    }
                }
            }
            _ => {}
        }
    }
    if pieces.is_empty() {
        return Err(SurgeryError::Missing("SentencePiece vocabulary"));
    }
    Ok(SentencePieceModel {
        pieces,
        precompiled_charsmap,
    })
}

/// A `tokenizers` JSON that tokenizes as the SentencePiece op did: NFKC-style precompiled
/// normalisation, extra whitespace removed, `▁` word prefix, Unigram pieces, `<s>` … `</s>` around.
pub fn tokenizer_json(sp: &SentencePieceModel) -> Result<String, SurgeryError> {
    use base64::Engine as _;
    let id_of = |kind: PieceType, text: &str| {
        sp.pieces
            .iter()
            .position(|(t, _, k)| *k == kind && t == text)
    };
    let unk_id = sp
        .pieces
        .iter()
        .position(|(_, _, k)| *k == PieceType::Unknown)
        .ok_or(SurgeryError::Missing("<unk> piece"))?;
    let bos = id_of(PieceType::Control, "<s>").ok_or(SurgeryError::Missing("<s> piece"))?;
    let eos = id_of(PieceType::Control, "</s>").ok_or(SurgeryError::Missing("</s> piece"))?;
    let vocab: Vec<_> = sp.pieces.iter().map(|(t, s, _)| json!([t, s])).collect();
    let special = |text: &str, id: usize| json!({"id": text, "ids": [id], "tokens": [text]});
    let mut normalizers = Vec::new();
    if !sp.precompiled_charsmap.is_empty() {
        normalizers.push(json!({
            "type": "Precompiled",
            "precompiled_charsmap": base64::engine::general_purpose::STANDARD.encode(&sp.precompiled_charsmap),
        }));
    }
    normalizers.push(json!({"type": "Strip", "strip_left": true, "strip_right": true}));
    normalizers.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}));
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": "</s>", "type_id": 0}}
            ],
            "pair": [
                {"SpecialToken": {"id": "<s>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 1}},
                {"SpecialToken": {"id": "</s>", "type_id": 1}}
            ],
            "special_tokens": {"<s>": special("<s>", bos), "</s>": special("</s>", eos)}
        },
        "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "model": {"type": "Unigram", "unk_id": unk_id, "vocab": vocab, "byte_fallback": false}
    });
    Ok(serde_json::to_string(&doc).expect("JSON values always serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], outputs: &[&str], model_attr: Option<&[u8]>) -> Vec<u8> {
        let mut w = Writer::default();
        for i in inputs {
            w.bytes(NODE_INPUT, i.as_bytes());
        }
        for o in outputs {
            w.bytes(NODE_OUTPUT, o.as_bytes());
        }
        w.bytes(NODE_OP_TYPE, op.as_bytes());
        if let Some(m) = model_attr {
            let mut a = Writer::default();
            a.bytes(ATTR_NAME, b"model");
            a.bytes(ATTR_S, m);
            w.bytes(NODE_ATTRIBUTE, &a.buf);
        }
        w.buf
    }

    #[test]
    fn cuts_the_tokenizer_and_rewires_its_consumers() {
        let mut graph = Writer::default();
        graph.bytes(
            GRAPH_NODE,
            &node(
                TOKENIZER_OP,
                &["inputs", "nbest", "shared"],
                &["tok:0", "tok:1"],
                Some(b"SPM"),
            ),
        );
        graph.bytes(GRAPH_NODE, &node("Gather", &["emb", "tok:0"], &["g"], None));
        graph.bytes(
            GRAPH_NODE,
            &node("Slice", &["tok:1", "shared"], &["s"], None),
        );
        for name in ["nbest", "shared"] {
            let mut t = Writer::default();
            t.bytes(TENSOR_NAME, name.as_bytes());
            graph.bytes(GRAPH_INITIALIZER, &t.buf);
        }
        graph.bytes(GRAPH_INPUT, &vector_input("inputs", 8));
        let mut opset = Writer::default();
        opset.bytes(1, CONTRIB_DOMAIN.as_bytes());
        let mut model = Writer::default();
        model.uint(1, 7);
        model.bytes(MODEL_GRAPH, &graph.buf);
        model.bytes(MODEL_OPSET_IMPORT, &opset.buf);

        let stripped = strip_tokenizer(&model.buf).unwrap();
        assert_eq!(stripped.sentencepiece, b"SPM");
        let out = String::from_utf8_lossy(&stripped.onnx).into_owned();
        assert!(!out.contains(TOKENIZER_OP));
        assert!(!out.contains("tok:0") && !out.contains("tok:1"));
        assert!(!out.contains(CONTRIB_DOMAIN));
        assert!(out.contains(TOKEN_IDS) && out.contains(ROW_SPLITS));
        assert!(
            !out.contains("nbest"),
            "a constant only the tokenizer read is dropped"
        );
        assert!(
            out.contains("shared"),
            "a constant other nodes read is kept"
        );
    }

    #[test]
    fn a_model_without_the_tokenizer_is_rejected() {
        let mut graph = Writer::default();
        graph.bytes(GRAPH_NODE, &node("Relu", &["x"], &["y"], None));
        let mut model = Writer::default();
        model.bytes(MODEL_GRAPH, &graph.buf);
        assert!(strip_tokenizer(&model.buf).is_err());
        assert!(strip_tokenizer(b"\xff\xff\xff").is_err());
    }
}
