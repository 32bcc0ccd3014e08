//! Converts a CTranslate2 Whisper model (`model.bin`, format version 6) into the GGML file that
//! whisper.cpp loads.
//!
//! Both formats store plain row-major tensors; the work is renaming, splitting the fused attention
//! projections, choosing f16 or f32 per tensor as whisper.cpp expects, and writing the header, the
//! mel filterbank and the byte-level vocabulary that whisper.cpp reads before the tensors.
//!
//! It is longer than 600 lines because it is one format converter: the reader, the name map,
//! the writer and the checks against whisper.cpp's own expectations belong together.

use half::f16;
use std::collections::BTreeMap;
use std::io::Write;

pub const GGML_MAGIC: u32 = 0x6767_6d6c;
const N_MELS: usize = 80;
const N_FFT_BINS: usize = 201; // n_fft = 400
const SAMPLE_RATE: f64 = 16_000.0;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("CTranslate2 model: {0}")]
    Format(String),
    #[error("vocabulary: {0}")]
    Vocabulary(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn bad(msg: impl Into<String>) -> ConvertError {
    ConvertError::Format(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ct2Type {
    F32,
    I8,
    I16,
    I32,
    F16,
}

/// One variable of a CTranslate2 model, borrowing its data.
struct Variable<'a> {
    shape: Vec<usize>,
    dtype: Ct2Type,
    data: &'a [u8],
}

impl Variable<'_> {
    fn to_f32(&self) -> Result<Vec<f32>, ConvertError> {
        match self.dtype {
            Ct2Type::F32 => Ok(self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            Ct2Type::F16 => Ok(self
                .data
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()),
            other => Err(bad(format!(
                "tensor of type {other:?} where floats were expected"
            ))),
        }
    }

    fn scalar(&self) -> Option<i64> {
        let d = self.data;
        match self.dtype {
            Ct2Type::I8 if d.len() == 1 => Some(i64::from(d[0] as i8)),
            Ct2Type::I16 if d.len() == 2 => Some(i64::from(i16::from_le_bytes([d[0], d[1]]))),
            Ct2Type::I32 if d.len() == 4 => {
                Some(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])))
            }
            _ => None,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConvertError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| bad(format!("truncated at byte {} (wanted {n} more)", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ConvertError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ConvertError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, ConvertError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn string(&mut self) -> Result<&'a str, ConvertError> {
        let n = usize::from(self.u16()?);
        let bytes = self.take(n)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        std::str::from_utf8(bytes).map_err(|_| bad("a name is not UTF-8"))
    }
}

/// Parses a CTranslate2 `model.bin` (version 6) into its variables, keyed by name.
fn parse_ct2(buf: &[u8]) -> Result<BTreeMap<&str, Variable<'_>>, ConvertError> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.u32()?;
    if version != 6 {
        return Err(bad(format!("format version {version}, expected 6")));
    }
    let spec = r.string()?;
    if spec != "WhisperSpec" {
        return Err(bad(format!("spec {spec:?}, expected WhisperSpec")));
    }
    let _revision = r.u32()?;
    let count = r.u32()?;
    let mut vars = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = usize::from(r.u8()?);
        let shape = (0..rank)
            .map(|_| r.u32().map(|d| d as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let dtype = match r.u8()? {
            0 => Ct2Type::F32,
            1 => Ct2Type::I8,
            2 => Ct2Type::I16,
            3 => Ct2Type::I32,
            4 => Ct2Type::F16,
            t => {
                return Err(bad(format!(
                    "{name}: unsupported data type {t} (only f32/f16 weights)"
                )));
            }
        };
        let nbytes = r.u32()? as usize;
        let data = r.take(nbytes)?;
        let elem = match dtype {
            Ct2Type::F32 | Ct2Type::I32 => 4,
            Ct2Type::F16 | Ct2Type::I16 => 2,
            Ct2Type::I8 => 1,
        };
        if shape.iter().product::<usize>() * elem != nbytes {
            return Err(bad(format!(
                "{name}: shape {shape:?} does not match {nbytes} bytes"
            )));
        }
        vars.insert(name, Variable { shape, dtype, data });
    }
    // Aliases follow (decoder/projection/weight → decoder/embeddings/weight); whisper.cpp ties
    // those weights itself, so they are read for validation and dropped.
    let aliases = r.u32()?;
    for _ in 0..aliases {
        r.string()?;
        r.string()?;
    }
    Ok(vars)
}

/// The model dimensions that head a GGML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl Hparams {
    fn as_array(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    /// Regular (non-special) tokens, which are all the vocabulary section lists.
    pub fn n_regular_tokens(&self) -> usize {
        if self.n_vocab >= 51865 { 50257 } else { 50256 }
    }
}

/// A tensor ready to be written: GGML name, shape (PyTorch order) and values.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// The Slaney-normalised mel filterbank (librosa's default), 80 × 201, that Whisper was trained with.
pub fn mel_filters() -> Vec<f32> {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= MIN_LOG_HZ {
            MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep
        } else {
            f / F_SP
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= MIN_LOG_MEL {
            MIN_LOG_HZ * (logstep * (m - MIN_LOG_MEL)).exp()
        } else {
            F_SP * m
        }
    };
    let max_mel = hz_to_mel(SAMPLE_RATE / 2.0);
    let mel_f: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(max_mel * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let fft_f: Vec<f64> = (0..N_FFT_BINS)
        .map(|j| SAMPLE_RATE / 2.0 * j as f64 / (N_FFT_BINS - 1) as f64)
        .collect();
    let mut out = Vec::with_capacity(N_MELS * N_FFT_BINS);
    for i in 0..N_MELS {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for &f in &fft_f {
            let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
            let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
            out.push((lower.min(upper).max(0.0) * enorm) as f32);
        }
    }
    out
}

/// GPT-2's byte-level alphabet: each byte is shown as a printable character; this undoes it.
fn byte_decoder() -> BTreeMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .map(|(b, c)| (char::from_u32(c).expect("valid code point"), b as u8))
        .collect()
}

/// Turns byte-level token strings back into the raw bytes whisper.cpp expects.
pub fn decode_vocabulary(tokens: &[String]) -> Result<Vec<Vec<u8>>, ConvertError> {
    let decoder = byte_decoder();
    tokens
        .iter()
        .map(|t| {
            t.chars()
                .map(|c| {
                    decoder.get(&c).copied().ok_or_else(|| {
                        ConvertError::Vocabulary(format!(
                            "token {t:?} has a character outside the byte-level alphabet"
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

/// Reads a CTranslate2 vocabulary: a JSON array of tokens, or one token per line.
pub fn parse_vocabulary(text: &str) -> Result<Vec<String>, ConvertError> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| ConvertError::Vocabulary(e.to_string()))
    } else {
        Ok(text.lines().map(str::to_owned).collect())
    }
}

fn layer_count(vars: &BTreeMap<&str, Variable<'_>>, prefix: &str) -> usize {
    (0..)
        .take_while(|i| {
            vars.contains_key(format!("{prefix}/layer_{i}/ffn/linear_0/weight").as_str())
        })
        .count()
}

fn hparams(vars: &BTreeMap<&str, Variable<'_>>) -> Result<Hparams, ConvertError> {
    let get = |name: &str| vars.get(name).ok_or_else(|| bad(format!("missing {name}")));
    let dim = |name: &str, axis: usize| -> Result<i32, ConvertError> {
        let v = get(name)?;
        v.shape
            .get(axis)
            .map(|&d| d as i32)
            .ok_or_else(|| bad(format!("{name} has no axis {axis}")))
    };
    let heads = |name: &str| -> Result<i32, ConvertError> {
        get(name)?
            .scalar()
            .map(|h| h as i32)
            .ok_or_else(|| bad(format!("{name} is not an integer scalar")))
    };
    Ok(Hparams {
        n_vocab: dim("decoder/embeddings/weight", 0)?,
        n_audio_ctx: dim("encoder/position_encodings/encodings", 0)?,
        n_audio_state: dim("encoder/position_encodings/encodings", 1)?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: layer_count(vars, "encoder") as i32,
        n_text_ctx: dim("decoder/position_encodings/encodings", 0)?,
        n_text_state: dim("decoder/embeddings/weight", 1)?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: layer_count(vars, "decoder") as i32,
        n_mels: dim("encoder/conv1/weight", 1)?,
        ftype: 1,
    })
}

/// Maps every CTranslate2 weight to its whisper.cpp tensor(s).
fn tensors(vars: &BTreeMap<&str, Variable<'_>>, hp: &Hparams) -> Result<Vec<Tensor>, ConvertError> {
    let mut out = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut take = |ct2: &str| -> Result<(Vec<usize>, Vec<f32>), ConvertError> {
        let v = vars.get(ct2).ok_or_else(|| bad(format!("missing {ct2}")))?;
        used.insert(ct2.to_owned());
        Ok((v.shape.clone(), v.to_f32()?))
    };
    let push = |out: &mut Vec<Tensor>, name: String, shape: Vec<usize>, values: Vec<f32>| {
        out.push(Tensor {
            name,
            shape,
            values,
        });
    };

    // Plain renames.
    let mut simple: Vec<(String, String)> = vec![
        ("encoder/conv1/weight".into(), "encoder.conv1.weight".into()),
        ("encoder/conv1/bias".into(), "encoder.conv1.bias".into()),
        ("encoder/conv2/weight".into(), "encoder.conv2.weight".into()),
        ("encoder/conv2/bias".into(), "encoder.conv2.bias".into()),
        (
            "encoder/position_encodings/encodings".into(),
            "encoder.positional_embedding".into(),
        ),
        (
            "encoder/layer_norm/gamma".into(),
            "encoder.ln_post.weight".into(),
        ),
        (
            "encoder/layer_norm/beta".into(),
            "encoder.ln_post.bias".into(),
        ),
        (
            "decoder/embeddings/weight".into(),
            "decoder.token_embedding.weight".into(),
        ),
        (
            "decoder/position_encodings/encodings".into(),
            "decoder.positional_embedding".into(),
        ),
        (
            "decoder/layer_norm/gamma".into(),
            "decoder.ln.weight".into(),
        ),
        ("decoder/layer_norm/beta".into(), "decoder.ln.bias".into()),
    ];
    let per_layer: &[(&str, &str)] = &[
        ("self_attention/layer_norm/gamma", "attn_ln.weight"),
        ("self_attention/layer_norm/beta", "attn_ln.bias"),
        ("self_attention/linear_1/weight", "attn.out.weight"),
        ("self_attention/linear_1/bias", "attn.out.bias"),
        ("ffn/layer_norm/gamma", "mlp_ln.weight"),
        ("ffn/layer_norm/beta", "mlp_ln.bias"),
        ("ffn/linear_0/weight", "mlp.0.weight"),
        ("ffn/linear_0/bias", "mlp.0.bias"),
        ("ffn/linear_1/weight", "mlp.2.weight"),
        ("ffn/linear_1/bias", "mlp.2.bias"),
    ];
    let cross: &[(&str, &str)] = &[
        ("attention/layer_norm/gamma", "cross_attn_ln.weight"),
        ("attention/layer_norm/beta", "cross_attn_ln.bias"),
        ("attention/linear_0/weight", "cross_attn.query.weight"),
        ("attention/linear_0/bias", "cross_attn.query.bias"),
        ("attention/linear_2/weight", "cross_attn.out.weight"),
        ("attention/linear_2/bias", "cross_attn.out.bias"),
    ];
    for (side, layers) in [("encoder", hp.n_audio_layer), ("decoder", hp.n_text_layer)] {
        for i in 0..layers {
            let maps = per_layer
                .iter()
                .chain(if side == "decoder" { cross } else { &[] });
            for (from, to) in maps {
                simple.push((
                    format!("{side}/layer_{i}/{from}"),
                    format!("{side}.blocks.{i}.{to}"),
                ));
            }
        }
    }
    for (from, to) in &simple {
        let (mut shape, values) = take(from)?;
        if to.starts_with("encoder.conv") && to.ends_with(".bias") {
            shape.push(1); // whisper.cpp adds conv biases as (d, 1)
        }
        push(&mut out, to.clone(), shape, values);
    }

    // Fused projections: self-attention is [q; k; v], decoder cross-attention is [k; v].
    // Whisper has no key bias (CTranslate2 stores zeros): check and drop it.
    let split = |shape: &[usize], values: Vec<f32>, parts: usize| -> Vec<(Vec<usize>, Vec<f32>)> {
        let rows = shape[0] / parts;
        let row_len: usize = shape[1..].iter().product();
        values
            .chunks(rows * row_len)
            .map(|c| {
                let mut s = shape.to_vec();
                s[0] = rows;
                (s, c.to_vec())
            })
            .collect()
    };
    for (side, layers) in [("encoder", hp.n_audio_layer), ("decoder", hp.n_text_layer)] {
        for i in 0..layers {
            let mut fused = vec![(
                "self_attention/linear_0",
                "attn",
                vec!["query", "key", "value"],
            )];
            if side == "decoder" {
                fused.push(("attention/linear_1", "cross_attn", vec!["key", "value"]));
            }
            for (from, to, names) in fused {
                let prefix = format!("{side}/layer_{i}/{from}");
                let (wshape, w) = take(&format!("{prefix}/weight"))?;
                let (bshape, b) = take(&format!("{prefix}/bias"))?;
                if wshape.len() != 2 || wshape[0] % names.len() != 0 || bshape[0] != wshape[0] {
                    return Err(bad(format!("{prefix}: unexpected fused shape {wshape:?}")));
                }
                let weights = split(&wshape, w, names.len());
                let biases = split(&bshape, b, names.len());
                for ((name, (ws, wv)), (bs, bv)) in names.iter().zip(weights).zip(biases) {
                    let base = format!("{side}.blocks.{i}.{to}.{name}");
                    push(&mut out, format!("{base}.weight"), ws, wv);
                    if *name == "key" {
                        if bv.iter().any(|&x| x != 0.0) {
                            return Err(bad(format!(
                                "{prefix}: key bias is not zero; whisper.cpp has none"
                            )));
                        }
                    } else {
                        push(&mut out, format!("{base}.bias"), bs, bv);
                    }
                }
            }
        }
    }

    // Anything left that is a real tensor would be silently lost: refuse instead.
    let leftover: Vec<_> = vars
        .iter()
        .filter(|(name, v)| !v.shape.is_empty() && !used.contains(**name))
        .map(|(name, _)| *name)
        .collect();
    if !leftover.is_empty() {
        return Err(bad(format!("unmapped tensors: {leftover:?}")));
    }
    Ok(out)
}

/// Weight precision of the GGML file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// Half precision (whisper.cpp ftype 1).
    F16,
    /// 8-bit blocks of 32 with an f16 scale (ggml Q8_0, whisper.cpp ftype 7).
    Q8_0,
}

const GGML_F32: i32 = 0;
const GGML_F16: i32 = 1;
const GGML_Q8_0: i32 = 8;
const Q8_BLOCK: usize = 32;

/// The ggml type whisper.cpp expects for a tensor: f32 for vectors, biases of the convolutions and
/// positional embeddings; f16 for the convolution kernels; the weight type for other matrices.
fn tensor_type(t: &Tensor, weights: WeightType) -> i32 {
    let keeps_f32 = t.shape.len() < 2
        || t.name.ends_with("positional_embedding")
        || (t.name.starts_with("encoder.conv") && t.name.ends_with(".bias"));
    match (keeps_f32, t.shape.len(), weights) {
        (true, _, _) => GGML_F32,
        (false, 2, WeightType::Q8_0) => GGML_Q8_0,
        _ => GGML_F16,
    }
}

/// ggml's reference Q8_0: per block of 32, scale = max|x| / 127, values rounded to i8.
fn quantize_q8_0(values: &[f32], out: &mut Vec<u8>) {
    for block in values.chunks(Q8_BLOCK) {
        let amax = block.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d > 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
    }
}

fn tensor_bytes(ggml_type: i32, elements: usize) -> usize {
    match ggml_type {
        GGML_F32 => elements * 4,
        GGML_Q8_0 => elements / Q8_BLOCK * (2 + Q8_BLOCK),
        _ => elements * 2,
    }
}

/// Converts a CTranslate2 Whisper model plus its vocabulary into a whisper.cpp GGML f16 file.
pub fn convert(
    ct2: &[u8],
    vocabulary: &[String],
    out: &mut impl Write,
) -> Result<Hparams, ConvertError> {
    convert_to(ct2, vocabulary, WeightType::F16, out)
}

/// Converts with the chosen weight precision.
pub fn convert_to(
    ct2: &[u8],
    vocabulary: &[String],
    weights: WeightType,
    out: &mut impl Write,
) -> Result<Hparams, ConvertError> {
    let vars = parse_ct2(ct2)?;
    let mut hp = hparams(&vars)?;
    hp.ftype = match weights {
        WeightType::F16 => 1,
        WeightType::Q8_0 => 7,
    };
    if hp.n_mels as usize != N_MELS {
        return Err(bad(format!(
            "{} mel bins; this converter writes the 80-bin filterbank",
            hp.n_mels
        )));
    }
    let n_regular = hp.n_regular_tokens();
    if vocabulary.len() < n_regular {
        return Err(ConvertError::Vocabulary(format!(
            "{} tokens, the model needs at least {n_regular}",
            vocabulary.len()
        )));
    }
    let vocab = decode_vocabulary(&vocabulary[..n_regular])?;
    let tensors = tensors(&vars, &hp)?;

    out.write_all(&GGML_MAGIC.to_le_bytes())?;
    for v in hp.as_array() {
        out.write_all(&v.to_le_bytes())?;
    }
    out.write_all(&(N_MELS as i32).to_le_bytes())?;
    out.write_all(&(N_FFT_BINS as i32).to_le_bytes())?;
    for f in mel_filters() {
        out.write_all(&f.to_le_bytes())?;
    }
    out.write_all(&(vocab.len() as i32).to_le_bytes())?;
    for token in &vocab {
        out.write_all(&(token.len() as u32).to_le_bytes())?;
        out.write_all(token)?;
    }
    for t in &tensors {
        let ggml_type = tensor_type(t, weights);
        if ggml_type == GGML_Q8_0 && t.shape.last().is_some_and(|&row| row % Q8_BLOCK != 0) {
            return Err(bad(format!(
                "{}: rows of {:?} do not split into blocks of 32",
                t.name, t.shape
            )));
        }
        out.write_all(&(t.shape.len() as i32).to_le_bytes())?;
        out.write_all(&(t.name.len() as i32).to_le_bytes())?;
        out.write_all(&ggml_type.to_le_bytes())?;
        for &d in t.shape.iter().rev() {
            out.write_all(&(d as i32).to_le_bytes())?;
        }
        out.write_all(t.name.as_bytes())?;
        let mut data = Vec::with_capacity(tensor_bytes(ggml_type, t.values.len()));
        match ggml_type {
            GGML_F32 => t
                .values
                .iter()
                .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
            GGML_Q8_0 => quantize_q8_0(&t.values, &mut data),
            _ => t
                .values
                .iter()
                .for_each(|&v| data.extend_from_slice(&f16::from_f32(v).to_le_bytes())),
        }
        out.write_all(&data)?;
    }
    Ok(hp)
}

/// One entry of a GGML file's tensor table, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions as whisper.cpp sees them (fastest-varying first).
    pub dims: Vec<usize>,
    pub ftype: i32,
}

/// Reads a GGML file's header and tensor table (used to check what we wrote).
pub fn read_ggml_layout(buf: &[u8]) -> Result<(Hparams, usize, Vec<TensorInfo>), ConvertError> {
    let mut r = Reader { buf, pos: 0 };
    if r.u32()? != GGML_MAGIC {
        return Err(bad("not a GGML file (bad magic)"));
    }
    let mut h = [0i32; 11];
    for v in &mut h {
        *v = r.u32()? as i32;
    }
    let hp = Hparams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
        ftype: h[10],
    };
    let (mels, bins) = (r.u32()? as usize, r.u32()? as usize);
    r.take(mels * bins * 4)?;
    let n_tokens = r.u32()? as usize;
    for _ in 0..n_tokens {
        let len = r.u32()? as usize;
        r.take(len)?;
    }
    let mut tensors = Vec::new();
    while r.pos < buf.len() {
        let n_dims = r.u32()? as usize;
        let name_len = r.u32()? as usize;
        let ftype = r.u32()? as i32;
        let dims = (0..n_dims)
            .map(|_| r.u32().map(|d| d as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let name = String::from_utf8_lossy(r.take(name_len)?).into_owned();
        r.take(tensor_bytes(ftype, dims.iter().product::<usize>()))?;
        tensors.push(TensorInfo { name, dims, ftype });
    }
    Ok((hp, n_tokens, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tiny CTranslate2 Whisper model (d = 4, one layer each side) in memory.
    fn tiny_ct2(key_bias: f32) -> Vec<u8> {
        let d = 4usize;
        let mut vars: Vec<(String, Vec<usize>, u8, Vec<u8>)> = Vec::new();
        let f16s = |n: usize, v: f32| -> Vec<u8> {
            (0..n)
                .flat_map(|_| f16::from_f32(v).to_le_bytes())
                .collect()
        };
        let mut add = |name: &str, shape: Vec<usize>, v: f32| {
            let n = shape.iter().product();
            vars.push((name.to_owned(), shape, 4, f16s(n, v)));
        };
        add("encoder/conv1/weight", vec![d, 80, 3], 0.5);
        add("encoder/conv1/bias", vec![d], 0.1);
        add("encoder/conv2/weight", vec![d, d, 3], 0.5);
        add("encoder/conv2/bias", vec![d], 0.1);
        add("encoder/position_encodings/encodings", vec![6, d], 0.2);
        add("encoder/layer_norm/gamma", vec![d], 1.0);
        add("encoder/layer_norm/beta", vec![d], 0.0);
        add("decoder/embeddings/weight", vec![51865, d], 0.3);
        add("decoder/position_encodings/encodings", vec![5, d], 0.2);
        add("decoder/layer_norm/gamma", vec![d], 1.0);
        add("decoder/layer_norm/beta", vec![d], 0.0);
        for side in ["encoder", "decoder"] {
            let p = format!("{side}/layer_0");
            for ln in ["self_attention/layer_norm", "ffn/layer_norm"] {
                add(&format!("{p}/{ln}/gamma"), vec![d], 1.0);
                add(&format!("{p}/{ln}/beta"), vec![d], 0.0);
            }
            add(
                &format!("{p}/self_attention/linear_0/weight"),
                vec![3 * d, d],
                0.25,
            );
            add(
                &format!("{p}/self_attention/linear_1/weight"),
                vec![d, d],
                0.25,
            );
            add(&format!("{p}/self_attention/linear_1/bias"), vec![d], 0.0);
            add(&format!("{p}/ffn/linear_0/weight"), vec![4 * d, d], 0.25);
            add(&format!("{p}/ffn/linear_0/bias"), vec![4 * d], 0.0);
            add(&format!("{p}/ffn/linear_1/weight"), vec![d, 4 * d], 0.25);
            add(&format!("{p}/ffn/linear_1/bias"), vec![d], 0.0);
            if side == "decoder" {
                add(&format!("{p}/attention/layer_norm/gamma"), vec![d], 1.0);
                add(&format!("{p}/attention/layer_norm/beta"), vec![d], 0.0);
                add(&format!("{p}/attention/linear_0/weight"), vec![d, d], 0.25);
                add(&format!("{p}/attention/linear_0/bias"), vec![d], 0.0);
                add(
                    &format!("{p}/attention/linear_1/weight"),
                    vec![2 * d, d],
                    0.25,
                );
                add(&format!("{p}/attention/linear_2/weight"), vec![d, d], 0.25);
                add(&format!("{p}/attention/linear_2/bias"), vec![d], 0.0);
            }
        }
        // Fused biases with a key section that is zero unless the test says otherwise.
        for side in ["encoder", "decoder"] {
            let mut b: Vec<u8> = f16s(d, 0.1);
            b.extend(f16s(d, key_bias));
            b.extend(f16s(d, 0.1));
            vars.push((
                format!("{side}/layer_0/self_attention/linear_0/bias"),
                vec![3 * d],
                4,
                b,
            ));
        }
        let mut kv = f16s(d, 0.0);
        kv.extend(f16s(d, 0.1));
        vars.push((
            "decoder/layer_0/attention/linear_1/bias".into(),
            vec![2 * d],
            4,
            kv,
        ));
        vars.push((
            "encoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        vars.push((
            "decoder/num_heads".into(),
            vec![],
            2,
            2i16.to_le_bytes().to_vec(),
        ));
        vars.sort_by(|a, b| a.0.cmp(&b.0));

        let string = |s: &str| -> Vec<u8> {
            let mut o = ((s.len() + 1) as u16).to_le_bytes().to_vec();
            o.extend_from_slice(s.as_bytes());
            o.push(0);
            o
        };
        let mut buf = 6u32.to_le_bytes().to_vec();
        buf.extend(string("WhisperSpec"));
        buf.extend(3u32.to_le_bytes());
        buf.extend((vars.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in &vars {
            buf.extend(string(name));
            buf.push(shape.len() as u8);
            for &s in shape {
                buf.extend((s as u32).to_le_bytes());
            }
            buf.push(*dtype);
            buf.extend((data.len() as u32).to_le_bytes());
            buf.extend(data);
        }
        buf.extend(1u32.to_le_bytes());
        buf.extend(string("decoder/projection/weight"));
        buf.extend(string("decoder/embeddings/weight"));
        buf
    }

    fn vocabulary() -> Vec<String> {
        (0..51865)
            .map(|i| {
                if i == 0 {
                    "Ġhello".to_owned()
                } else {
                    format!("t{i}")
                }
            })
            .collect()
    }

    #[test]
    fn writes_the_header_and_tensor_table_whisper_cpp_expects() {
        let mut out = Vec::new();
        let hp = convert(&tiny_ct2(0.0), &vocabulary(), &mut out).unwrap();
        let (read_hp, n_tokens, tensors) = read_ggml_layout(&out).unwrap();
        assert_eq!(hp, read_hp);
        assert_eq!(
            hp.as_array(),
            [51865, 6, 4, 2, 1, 5, 4, 2, 1, 80, 1],
            "n_vocab, audio ctx/state/head/layer, text ctx/state/head/layer, mels, ftype"
        );
        assert_eq!(
            n_tokens, 50257,
            "multilingual vocabulary lists the regular tokens only"
        );
        // "Ġhello" is the byte-level spelling of " hello".
        let first_token = &out[4 + 44 + 8 + 80 * 201 * 4 + 4..][..4 + 6];
        assert_eq!(&first_token[4..], b" hello");

        let find = |n: &str| {
            tensors
                .iter()
                .find(|t| t.name == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(find("encoder.conv1.weight").dims, vec![3, 80, 4]);
        assert_eq!(find("encoder.conv1.weight").ftype, 1);
        assert_eq!(find("encoder.conv1.bias").dims, vec![1, 4]);
        assert_eq!(find("encoder.conv1.bias").ftype, 0);
        assert_eq!(find("encoder.positional_embedding").ftype, 0);
        assert_eq!(find("decoder.token_embedding.weight").dims, vec![4, 51865]);
        assert_eq!(find("encoder.blocks.0.attn.query.weight").dims, vec![4, 4]);
        assert_eq!(find("encoder.blocks.0.attn.query.bias").ftype, 0);
        assert_eq!(
            find("decoder.blocks.0.cross_attn.value.weight").dims,
            vec![4, 4]
        );
        assert!(tensors.iter().all(|t| !t.name.ends_with("key.bias")));
        // Per encoder layer 15 tensors, per decoder layer 24, plus 7 + 4 outside the layers.
        assert_eq!(tensors.len(), 15 + 24 + 11);
    }

    #[test]
    fn q8_0_quantises_matrices_and_keeps_the_rest() {
        let mut out = Vec::new();
        // d = 4 rows are too short for blocks of 32: refused rather than written wrong.
        assert!(convert_to(&tiny_ct2(0.0), &vocabulary(), WeightType::Q8_0, &mut out).is_err());
        let mut block = Vec::new();
        let values: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 8.0).collect();
        quantize_q8_0(&values, &mut block);
        assert_eq!(block.len(), 34);
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        assert!((d - 2.0 / 127.0).abs() < 1e-4);
        for (q, v) in block[2..].iter().zip(&values) {
            assert!(((*q as i8) as f32 * d - v).abs() <= d, "{q} vs {v}");
        }
    }

    #[test]
    fn a_non_zero_key_bias_is_refused() {
        let err = convert(&tiny_ct2(0.5), &vocabulary(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("key bias"), "{err}");
    }

    #[test]
    fn truncated_models_are_errors_not_panics() {
        let full = tiny_ct2(0.0);
        for cut in [0, 3, 20, full.len() / 2, full.len() - 1] {
            assert!(
                convert(&full[..cut], &vocabulary(), &mut Vec::new()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn mel_filters_match_librosa_slaney() {
        let f = mel_filters();
        assert_eq!(f.len(), 80 * 201);
        // Every filter has some weight, and the first one peaks at bin 1 (librosa: 0.02486259).
        for row in f.chunks(201) {
            assert!(row.iter().any(|&x| x > 0.0));
        }
        assert!((f[1] - 0.024_862_59).abs() < 1e-6, "{}", f[1]);
        assert_eq!(f[0], 0.0);
    }

    #[test]
    fn byte_level_tokens_decode_to_bytes() {
        let v = decode_vocabulary(&["Ġworld".into(), "Ċ".into(), "ä½ł".into()]).unwrap();
        assert_eq!(v[0], b" world");
        assert_eq!(v[1], b"\n");
        assert_eq!(v[2], "你".as_bytes());
    }
}
