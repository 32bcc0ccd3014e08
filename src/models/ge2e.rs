//! The GE2E speaker encoder of resemblyzer 0.1.4 (`resemblyzer/pretrained.pt`) as an ONNX graph.
//!
//! The checkpoint is PyTorch's legacy (non-zip) format: five pickles, then each storage as an
//! int64 element count followed by its float32 data. The manifest pins the file's digest, so the
//! tensors are read at their known places, each place checked by the element count before it.
//! The network: 3 LSTM layers (40 → 256), the last hidden state through Linear(256, 256), ReLU
//! and an L2 norm.

use super::embedding::Dim;
use super::onnx_graph::{Attr, FLOAT, Graph, INT32};

pub const MEL_BANDS: usize = 40;
pub const HIDDEN: usize = 256;
const GATES: usize = 4 * HIDDEN;

/// A storage in the checkpoint: where its data starts (bytes) and how many floats it holds.
struct Storage {
    data_at: usize,
    len: usize,
}

const LINEAR_BIAS: Storage = Storage {
    data_at: 6_699,
    len: HIDDEN,
};
const LINEAR_WEIGHT: Storage = Storage {
    data_at: 7_731,
    len: HIDDEN * HIDDEN,
};
/// cuDNN's flat LSTM weights: per layer W_ih, W_hh; then per layer b_ih, b_hh.
const LSTM: Storage = Storage {
    data_at: 269_883,
    len: 1_357_824,
};

#[derive(Debug, thiserror::Error)]
#[error("resemblyzer pretrained.pt: {0}")]
pub struct CheckpointError(String);

fn storage(pt: &[u8], s: &Storage) -> Result<Vec<f32>, CheckpointError> {
    let count_at = s.data_at - 8;
    let end = s.data_at + 4 * s.len;
    let count = pt
        .get(count_at..s.data_at)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
    if count != Some(s.len as i64) || pt.len() < end {
        return Err(CheckpointError(format!(
            "no storage of {} floats at byte {}; not the 0.1.4 checkpoint",
            s.len, s.data_at
        )));
    }
    // Storages are not 4-byte aligned: read bytes, not a cast slice.
    Ok(pt[s.data_at..end]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect())
}

/// PyTorch orders an LSTM's gate rows i, f, g, o; ONNX wants i, o, f, c (c = g).
fn to_onnx_gates(rows: &[f32]) -> Vec<f32> {
    let block = rows.len() / 4;
    [0, 3, 1, 2]
        .iter()
        .flat_map(|&g| &rows[g * block..(g + 1) * block])
        .copied()
        .collect()
}

/// The encoder as ONNX: input `mel` [batch, frames, 40] (power mel, not log) with `frames`
/// [batch] (int32, each sequence's length, ≤ the padded one); output `embedding` [batch, 256].
pub fn convert(pt: &[u8]) -> Result<Vec<u8>, CheckpointError> {
    let lstm = storage(pt, &LSTM)?;
    let mut g = Graph::default();
    g.input(
        "mel",
        FLOAT,
        &[
            Dim::Named("batch"),
            Dim::Named("frames"),
            Dim::Fixed(MEL_BANDS),
        ],
    );
    g.input("frames", INT32, &[Dim::Named("batch")]);
    // ONNX's LSTM reads time-major input.
    g.node(
        "Transpose",
        &["mel"],
        &["x0"],
        &[Attr::Ints("perm", &[1, 0, 2])],
    );
    let mut at = 0;
    let mut take = |n: usize| {
        at += n;
        &lstm[at - n..at]
    };
    let mut weights = Vec::new();
    for layer in 0..3 {
        let input = if layer == 0 { MEL_BANDS } else { HIDDEN };
        weights.push((
            to_onnx_gates(take(GATES * input)),
            to_onnx_gates(take(GATES * HIDDEN)),
            input,
        ));
    }
    for (layer, (w, r, input)) in weights.into_iter().enumerate() {
        let (b_ih, b_hh) = (take(GATES).to_vec(), take(GATES).to_vec());
        let bias = [to_onnx_gates(&b_ih), to_onnx_gates(&b_hh)].concat();
        g.floats(&format!("w{layer}"), &[1, GATES, input], &w);
        g.floats(&format!("r{layer}"), &[1, GATES, HIDDEN], &r);
        g.floats(&format!("b{layer}"), &[1, 2 * GATES], &bias);
        let inputs = [
            format!("x{layer}"),
            format!("w{layer}"),
            format!("r{layer}"),
            format!("b{layer}"),
            "frames".to_owned(),
        ];
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let attrs = [Attr::Int("hidden_size", HIDDEN as i64)];
        if layer < 2 {
            // Y is [time, directions, batch, hidden]: drop the direction axis for the next layer.
            let y = format!("y{layer}");
            g.node("LSTM", &inputs, &[&y], &attrs);
            g.node(
                "Squeeze",
                &[&y, "axis1"],
                &[&format!("x{}", layer + 1)],
                &[],
            );
        } else {
            // Y_h: each sequence's hidden state at its own last frame.
            g.node("LSTM", &inputs, &["", "h"], &attrs);
            g.node("Squeeze", &["h", "axis0"], &["last"], &[]);
        }
    }
    g.int64s("axis0", &[0]);
    g.int64s("axis1", &[1]);
    g.floats("linear_w", &[HIDDEN, HIDDEN], &storage(pt, &LINEAR_WEIGHT)?);
    g.floats("linear_b", &[HIDDEN], &storage(pt, &LINEAR_BIAS)?);
    g.node(
        "Gemm",
        &["last", "linear_w", "linear_b"],
        &["projected"],
        &[Attr::Int("transB", 1)],
    );
    g.node("Relu", &["projected"], &["rectified"], &[]);
    g.node(
        "LpNormalization",
        &["rectified"],
        &["embedding"],
        &[Attr::Int("axis", 1), Attr::Int("p", 2)],
    );
    g.output(
        "embedding",
        FLOAT,
        &[Dim::Named("batch"), Dim::Fixed(HIDDEN)],
    );
    Ok(g.model("callqa_ge2e_speaker_encoder", "callqa models install", 17))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_are_reordered_to_onnx() {
        let rows: Vec<f32> = (0..8).map(|v| v as f32).collect(); // i i f f g g o o
        assert_eq!(to_onnx_gates(&rows), [0., 1., 6., 7., 2., 3., 4., 5.]);
    }

    #[test]
    fn a_file_that_is_not_the_checkpoint_is_refused() {
        assert!(convert(&[0u8; 1000]).is_err());
        let mut pt = vec![0u8; 300_000];
        pt[LSTM.data_at - 8..LSTM.data_at].copy_from_slice(&(LSTM.len as i64).to_le_bytes());
        assert!(convert(&pt).is_err(), "too short for its storage");
    }
}
