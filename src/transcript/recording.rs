//! A whole recording through a call session: its layout decided from the first seconds, then
//! every chunk pushed and every window collected.

use super::CallTranscript;
use super::session::{CallOptions, CallSession, Engines, Packing, TranscribeError, WindowMsg};
use crate::audio::StreamDecoder;
use crate::audio::channels::{DuplicateDetector, Layout, channel_roles};
use std::sync::mpsc;

/// How long to listen before deciding whether stereo channels are copies of each other.
const MAX_LAYOUT_PROBE_SECS: u64 = 60;

pub(super) fn transcribe_call(
    engines: &Engines,
    mut decoder: StreamDecoder,
    opts: &CallOptions,
) -> Result<CallTranscript, TranscribeError> {
    let rate = decoder.sample_rate();
    let n_channels = decoder.channels();
    let repaired = decoder.repaired().map(str::to_owned);

    // Listen to the first seconds to tell real stereo from mono written twice.
    let mut held: Vec<Vec<Vec<f32>>> = Vec::new();
    let mut ended = false;
    let layout = if n_channels == 1 {
        Layout::Mono
    } else {
        let mut detector = DuplicateDetector::default();
        let mut frames: u64 = 0;
        while !detector.ready() && frames < MAX_LAYOUT_PROBE_SECS * u64::from(rate) {
            match decoder.next_chunk()? {
                Some(chunk) => {
                    frames += chunk[0].len() as u64;
                    detector.push(&chunk);
                    held.push(chunk);
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if detector.all_duplicates() {
            Layout::Duplicated {
                channels: n_channels,
            }
        } else {
            Layout::PerChannel {
                roles: channel_roles(n_channels, &opts.channel_roles),
            }
        }
    };
    let (out, windows) = mpsc::channel();
    let mut session =
        CallSession::new(engines, opts, rate, n_channels, layout, Packing::Batch, out)?;
    for chunk in held.drain(..) {
        session.push(&chunk)?;
    }
    if !ended {
        while let Some(chunk) = decoder.next_chunk()? {
            if opts.cancel.is_cancelled() {
                return Err(TranscribeError::Cancelled);
            }
            session.push(&chunk)?;
        }
    }
    let end = session.finish()?;
    let mut segments = Vec::new();
    for msg in windows {
        if let WindowMsg::Window(s) = msg {
            segments.extend(end.plan.segments(s)?);
        }
    }
    Ok(CallTranscript {
        repaired,
        ..end.transcript(segments)
    })
}
