//! A minimal protobuf wire-format reader and writer.
//!
//! Model surgery (ONNX graphs, SentencePiece models) only needs to walk fields, drop a few and
//! rewrite a few. Working at the wire level keeps every field we do not touch byte-for-byte
//! intact, which a schema-based decode/encode of a partial schema would not.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed protobuf: {}", self.0)
    }
}

impl std::error::Error for WireError {}

/// The value of one field, borrowing its bytes from the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn str(&self) -> Option<&'a str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
}

/// One field: its number, its value, and its raw encoding (tag included) for verbatim copying.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut result = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or_else(|| WireError("truncated varint".into()))?;
        *pos += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err(WireError("varint longer than 10 bytes".into()))
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], WireError> {
    let end = pos
        .checked_add(n)
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| WireError(format!("field of {n} bytes runs past the end")))?;
    let slice = &buf[*pos..end];
    *pos = end;
    Ok(slice)
}

/// Iterates over the fields of one message.
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, pos: 0 }
}

impl<'a> Fields<'a> {
    fn read_field(&mut self) -> Result<Field<'a>, WireError> {
        let start = self.pos;
        let tag = read_varint(self.buf, &mut self.pos)?;
        let number =
            u32::try_from(tag >> 3).map_err(|_| WireError("field number too large".into()))?;
        if number == 0 {
            return Err(WireError("field number 0".into()));
        }
        let value = match tag & 7 {
            0 => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            1 => {
                let b = take(self.buf, &mut self.pos, 8)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            }
            2 => {
                let len = read_varint(self.buf, &mut self.pos)?;
                let len = usize::try_from(len).map_err(|_| WireError("length too large".into()))?;
                Value::Bytes(take(self.buf, &mut self.pos, len)?)
            }
            5 => {
                let b = take(self.buf, &mut self.pos, 4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            }
            other => return Err(WireError(format!("unsupported wire type {other}"))),
        };
        Ok(Field {
            number,
            value,
            raw: &self.buf[start..self.pos],
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let item = self.read_field();
        if item.is_err() {
            self.pos = self.buf.len(); // stop after the first error
        }
        Some(item)
    }
}

/// Appends fields to a message being built.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    pub fn raw(&mut self, raw: &[u8]) {
        self.buf.extend_from_slice(raw);
    }

    pub fn uint(&mut self, number: u32, v: u64) {
        self.varint(u64::from(number) << 3);
        self.varint(v);
    }

    pub fn fixed32(&mut self, number: u32, v: u32) {
        self.varint((u64::from(number) << 3) | 5);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, number: u32, b: &[u8]) {
        self.varint((u64::from(number) << 3) | 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_wire_type() {
        let mut w = Writer::default();
        w.uint(1, 300);
        w.bytes(2, b"hello");
        w.raw(&[0x1d, 1, 0, 0, 0]); // field 3, fixed32 = 1
        w.raw(&[0x21, 2, 0, 0, 0, 0, 0, 0, 0]); // field 4, fixed64 = 2
        let got: Vec<_> = fields(&w.buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0].value, Value::Varint(300));
        assert_eq!(got[1].value.str(), Some("hello"));
        assert_eq!(got[2].value, Value::Fixed32(1));
        assert_eq!(got[3].value, Value::Fixed64(2));
        let copied: Vec<u8> = got.iter().flat_map(|f| f.raw.iter().copied()).collect();
        assert_eq!(copied, w.buf);
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let mut w = Writer::default();
        w.bytes(2, b"hello");
        for cut in 0..w.buf.len() {
            let r: Result<Vec<_>, _> = fields(&w.buf[..cut]).collect();
            assert!(cut == 0 || r.is_err(), "cut at {cut} should fail");
        }
    }
}
