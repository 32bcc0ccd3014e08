//! Writes ONNX models: the graphs callqa builds itself from weights it has read (the GE2E speaker
//! encoder, the e5 sentence encoder, the emotion head). Only what those graphs use: nodes with int
//! and float attributes (in the default domain or ONNX Runtime's `com.microsoft`), float, int64 and
//! uint8 initialisers, and typed inputs and outputs.

use super::embedding::{Dim, value_info};
use super::protowire::Writer;

/// ONNX TensorProto element types.
pub const FLOAT: u64 = 1;
pub const UINT8: u64 = 2;
pub const INT32: u64 = 6;
pub const INT64: u64 = 7;

/// An attribute of a node.
pub enum Attr<'a> {
    Int(&'a str, i64),
    Ints(&'a str, &'a [i64]),
    Float(&'a str, f32),
}

/// ONNX Runtime's own operators (MatMulNBits, …), opset 1.
pub const MICROSOFT: &str = "com.microsoft";

/// A graph being built, field by field in the order ONNX declares them.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Vec<u8>>,
    ops: Vec<String>,
    initializers: Vec<Vec<u8>>,
    inputs: Vec<Vec<u8>>,
    outputs: Vec<Vec<u8>>,
    uses_microsoft: bool,
}

impl Graph {
    /// Adds a node. An empty output name leaves that optional output out.
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[Attr<'_>]) {
        self.node_in("", op, inputs, outputs, attrs);
    }

    /// Adds a node of an operator set other than the default one (`MICROSOFT`).
    pub fn node_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: &[Attr<'_>],
    ) {
        let mut n = Writer::default();
        for i in inputs {
            n.bytes(1, i.as_bytes());
        }
        for o in outputs {
            n.bytes(2, o.as_bytes());
        }
        // Named by op and occurrence: LSTM_0, LSTM_1, …
        let seen = self.ops.iter().filter(|o| *o == op).count();
        self.ops.push(op.to_owned());
        n.bytes(3, format!("{op}_{seen}").as_bytes());
        n.bytes(4, op.as_bytes());
        for attr in attrs {
            let mut a = Writer::default();
            match attr {
                Attr::Int(name, v) => {
                    a.bytes(1, name.as_bytes());
                    a.uint(3, *v as u64);
                    a.uint(20, 2); // AttributeProto.INT
                }
                Attr::Ints(name, vs) => {
                    a.bytes(1, name.as_bytes());
                    for v in *vs {
                        a.uint(8, *v as u64);
                    }
                    a.uint(20, 7); // AttributeProto.INTS
                }
                Attr::Float(name, v) => {
                    a.bytes(1, name.as_bytes());
                    a.fixed32(2, v.to_bits());
                    a.uint(20, 1); // AttributeProto.FLOAT
                }
            }
            n.bytes(5, &a.buf);
        }
        if !domain.is_empty() {
            n.bytes(7, domain.as_bytes());
            self.uses_microsoft |= domain == MICROSOFT;
        }
        self.nodes.push(n.buf);
    }

    /// A float initialiser, row-major.
    pub fn floats(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len(), "{name}");
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, dims, FLOAT, &raw);
    }

    /// An int64 initialiser (shapes, axes).
    pub fn int64s(&mut self, name: &str, values: &[i64]) {
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, &[values.len()], INT64, &raw);
    }

    /// A uint8 initialiser (packed 4-bit weights), row-major.
    pub fn uint8s(&mut self, name: &str, dims: &[usize], values: &[u8]) {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len(), "{name}");
        self.initializer(name, dims, UINT8, values);
    }

    fn initializer(&mut self, name: &str, dims: &[usize], elem_type: u64, raw: &[u8]) {
        let mut t = Writer::default();
        for &d in dims {
            t.uint(1, d as u64);
        }
        t.uint(2, elem_type);
        t.bytes(8, name.as_bytes());
        t.bytes(9, raw);
        self.initializers.push(t.buf);
    }

    pub fn input(&mut self, name: &str, elem_type: u64, dims: &[Dim<'_>]) {
        self.inputs.push(value_info(name, elem_type, dims));
    }

    pub fn output(&mut self, name: &str, elem_type: u64, dims: &[Dim<'_>]) {
        self.outputs.push(value_info(name, elem_type, dims));
    }

    /// The serialised ModelProto (IR version 7) of this graph at the given default-domain opset.
    pub fn model(self, name: &str, producer: &str, opset: u64) -> Vec<u8> {
        let mut graph = Writer::default();
        for n in &self.nodes {
            graph.bytes(1, n);
        }
        graph.bytes(2, name.as_bytes());
        for t in &self.initializers {
            graph.bytes(5, t);
        }
        for i in &self.inputs {
            graph.bytes(11, i);
        }
        for o in &self.outputs {
            graph.bytes(12, o);
        }
        let mut domain = Writer::default();
        domain.bytes(1, b"");
        domain.uint(2, opset);
        let mut model = Writer::default();
        model.uint(1, 7); // IR version
        model.bytes(2, producer.as_bytes());
        model.bytes(7, &graph.buf);
        model.bytes(8, &domain.buf);
        if self.uses_microsoft {
            let mut ms = Writer::default();
            ms.bytes(1, MICROSOFT.as_bytes());
            ms.uint(2, 1);
            model.bytes(8, &ms.buf);
        }
        model.buf
    }
}
