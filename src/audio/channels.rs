//! Channels as roles: which recorded channel is the agent and which the customer.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    #[serde(alias = "agent")]
    Agent,
    #[serde(alias = "customer")]
    Customer,
    #[serde(alias = "unknown")]
    Unknown,
}

impl Role {
    /// The name in the JSON: `AGENT`, `CUSTOMER`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "AGENT",
            Role::Customer => "CUSTOMER",
            Role::Unknown => "UNKNOWN",
        }
    }
}

/// How the recording's channels map to speakers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One mixed track: roles are not known from the audio.
    Mono,
    /// Several channels carrying the same signal (mono written as stereo): treated as mono.
    Duplicated { channels: usize },
    /// One speaker side per channel.
    PerChannel { roles: Vec<Role> },
}

/// The roles of the channels of a multi-channel call: an explicit map, else channel 0 = agent and
/// channel 1 = customer for stereo, and UNKNOWN for anything beyond.
pub fn channel_roles(channels: usize, explicit: &[Role]) -> Vec<Role> {
    (0..channels)
        .map(|c| match explicit.get(c) {
            Some(&r) => r,
            None if explicit.is_empty() && channels == 2 => [Role::Agent, Role::Customer][c],
            None => Role::Unknown,
        })
        .collect()
}

/// Decides whether channels are copies of channel 0, from the first seconds of audio.
///
/// Channels count as copies when their difference carries less than 0.1 % of the signal's
/// energy, so a lossy encoder's small differences between identical channels still match.
#[derive(Debug, Default)]
pub struct DuplicateDetector {
    signal: f64,
    diff: Vec<f64>,
    frames: usize,
}

/// Frames of non-silent audio to look at before deciding (5 s at 8 kHz or more).
pub const DECISION_FRAMES: usize = 40_000;

impl DuplicateDetector {
    pub fn push(&mut self, chunk: &[Vec<f32>]) {
        if self.diff.len() < chunk.len() {
            self.diff.resize(chunk.len(), 0.0);
        }
        let Some(first) = chunk.first() else { return };
        for (i, &x) in first.iter().enumerate() {
            if x.abs() > 1e-4 {
                self.frames += 1;
            }
            self.signal += f64::from(x) * f64::from(x);
            for (c, ch) in chunk.iter().enumerate().skip(1) {
                let d = f64::from(ch[i] - x);
                self.diff[c] += d * d;
            }
        }
    }

    /// Enough non-silent audio has been seen to decide.
    pub fn ready(&self) -> bool {
        self.frames >= DECISION_FRAMES
    }

    /// True when every channel copies channel 0 (and there was signal to compare).
    pub fn all_duplicates(&self) -> bool {
        self.signal > 0.0 && self.diff.iter().skip(1).all(|&d| d <= self.signal * 1e-3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_defaults_to_agent_then_customer_and_explicit_maps_win() {
        assert_eq!(channel_roles(2, &[]), vec![Role::Agent, Role::Customer]);
        assert_eq!(
            channel_roles(2, &[Role::Customer, Role::Agent]),
            vec![Role::Customer, Role::Agent]
        );
        assert_eq!(channel_roles(3, &[]), vec![Role::Unknown; 3]);
        assert_eq!(
            channel_roles(3, &[Role::Agent]),
            vec![Role::Agent, Role::Unknown, Role::Unknown]
        );
    }

    #[test]
    fn copies_are_detected_and_different_channels_are_not() {
        let a: Vec<f32> = (0..50_000).map(|i| (i as f32 * 0.01).sin() * 0.3).collect();
        let b: Vec<f32> = (0..50_000)
            .map(|i| (i as f32 * 0.013).cos() * 0.3)
            .collect();
        let noisy: Vec<f32> = a.iter().map(|x| x + 0.001).collect();
        let mut same = DuplicateDetector::default();
        same.push(&[a.clone(), noisy]);
        assert!(same.ready() && same.all_duplicates());
        let mut diff = DuplicateDetector::default();
        diff.push(&[a, b]);
        assert!(!diff.all_duplicates());
        let mut silent = DuplicateDetector::default();
        silent.push(&[vec![0.0; 100], vec![0.0; 100]]);
        assert!(!silent.ready() && !silent.all_duplicates());
    }
}
