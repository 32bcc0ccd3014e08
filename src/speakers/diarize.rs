//! Diarization: who speaks when, on one track of 16 kHz audio.
//!
//! 1. The segmentation model reads 10 s windows every 2.5 s: per 17 ms frame, how many voices
//!    speak (the count), and which of the window's local speakers.
//! 2. Voiceprints of short stretches (1.6 s every 0.4 s) where exactly one voice speaks are
//!    clustered (Ward) into the call's speakers; every frame takes the speaker whose centroid the
//!    stretches covering it resemble most.
//! 3. Each window's local speakers are linked to the call's speakers by those frame labels (a
//!    vote, one local speaker per call speaker); a local speaker whose frames split between two
//!    voices was two people merged, and its frames keep their own labels instead.
//! 4. Each frame goes to as many speakers as the count says (at most two), the best scored first.
//!
//! Measured against the simpler per-window scheme of pyannote (which embeds each local speaker
//! whole), this halves speaker confusion on two similar voices: segmentation-3.0 often merges
//! them within a window.

use super::cluster::ward;
use super::encoder::{DIM, SpeakerEncoder, Voiceprint, similarity};
use super::mel::{BANDS, normalize_volume};
use super::segmentation::{Active, FRAME_SAMPLES, Segmenter, WINDOW_SAMPLES};
use crate::onnx::OnnxError;

/// Windows start every 148 frames (2.4975 s), so that every window's frames fall on one grid.
const HOP_FRAMES: usize = 148;
/// A frame's own stretch of audio: the 270 samples around its centre (sample 270 g + 495).
const FRAME_CENTRE: usize = 495;
/// Voiceprint stretches: 1.6 s long, every 0.4 s, within speech that pauses less than 0.3 s and
/// lasts at least 0.8 s.
const STRETCH_FRAMES: usize = 95;
const STRETCH_HOP_FRAMES: usize = 24;
const BRIDGED_GAP_FRAMES: usize = 18;
const MIN_RUN_FRAMES: usize = 47;
/// A stretch needs this much single-voice audio (samples) for a voiceprint.
const MIN_STRETCH_SAMPLES: usize = 7_680;
/// A local speaker whose second most frequent label holds this share of its frames, and at
/// least a second of them, is two voices merged.
const MERGED_SHARE: f32 = 0.25;
const MERGED_MIN_FRAMES: usize = 59;
/// At most this many stretches are clustered; the rest join the nearest centroid.
const MAX_CLUSTERED: usize = 2_000;
/// Two centroids this alike are one voice: a recording of one party (voicemail, IVR).
const SAME_VOICE: f32 = 0.9;
/// ... and this alike, when there are too few voiceprints to tell a second voice from the
/// variation of one (a few seconds of speech).
const LIKELY_SAME_VOICE: f32 = 0.7;
const FEW_PRINTS: usize = 12;
/// Windows run through the segmentation model together.
const WINDOW_BATCH: usize = 4;
/// Voiceprints computed together.
const STRETCH_BATCH: usize = 16;

/// A stretch of one speaker's talk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerTurn {
    /// 0-based, in order of first speech.
    pub speaker: usize,
    pub start_ms: u64,
    pub end_ms: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Diarization {
    /// Speakers found (their count may be below the number asked for).
    pub speakers: usize,
    /// Ordered by start; two speakers' turns overlap where they talk at once.
    pub turns: Vec<SpeakerTurn>,
    /// Each speaker's centroid voiceprint.
    pub voiceprints: Vec<Voiceprint>,
}

impl Diarization {
    /// The speaker who talks most within [start, end), if anyone does.
    pub fn speaker_of(&self, start_ms: u64, end_ms: u64) -> Option<usize> {
        let mut talk = vec![0u64; self.speakers];
        for t in &self.turns {
            let overlap = t
                .end_ms
                .min(end_ms)
                .saturating_sub(t.start_ms.max(start_ms));
            talk[t.speaker] += overlap;
        }
        let best = (0..self.speakers).max_by_key(|&s| talk[s])?;
        (talk[best] > 0).then_some(best)
    }

    /// The speaker whose talk is nearest to a moment (for a word that falls in a pause).
    pub fn nearest_speaker(&self, at_ms: u64) -> Option<usize> {
        self.turns
            .iter()
            .min_by_key(|t| {
                if at_ms < t.start_ms {
                    t.start_ms - at_ms
                } else {
                    at_ms.saturating_sub(t.end_ms)
                }
            })
            .map(|t| t.speaker)
    }
}

/// The most speakers a recording is split into.
pub const MAX_SPEAKERS: usize = 8;

/// Splits a call's audio into speakers: at most `max_speakers` (2 for a call, never more than
/// MAX_SPEAKERS).
pub fn diarize(
    segmenter: &Segmenter,
    encoder: &SpeakerEncoder,
    audio: &[f32],
    max_speakers: usize,
) -> Result<Diarization, OnnxError> {
    let max_speakers = max_speakers.min(MAX_SPEAKERS);
    let frames = frame_count(audio.len());
    if frames == 0 || max_speakers == 0 {
        return Ok(Diarization::default());
    }
    let windows = segment(segmenter, audio)?;
    let count = speaker_count(&windows, frames);
    let stretches = stretches(&count);
    let prints = voiceprints(encoder, audio, &count, &stretches)?;
    let (kept, prints): (Vec<_>, Vec<_>) = stretches
        .into_iter()
        .zip(prints)
        .filter_map(|(s, p)| Some((s, p?)))
        .unzip();
    if prints.is_empty() {
        // Speech too short or too broken for a voiceprint: one speaker wherever anyone talks.
        return Ok(from_frames(&count_only(&count), 1, Vec::new()));
    }
    let centroids = centroids(&prints, max_speakers);
    let labels = frame_labels(&kept, &prints, &centroids, frames);
    let scores = link_windows(&windows, &labels, centroids.len(), frames);
    let who = assign(&count, &scores);
    Ok(from_frames(&who, centroids.len(), centroids))
}

/// Frames whose centre lies inside the audio.
fn frame_count(samples: usize) -> usize {
    if samples <= FRAME_CENTRE {
        0
    } else {
        (samples - FRAME_CENTRE).div_ceil(FRAME_SAMPLES)
    }
}

/// A window's first frame on the call's grid, and who is active in each of its frames.
struct Window {
    first_frame: usize,
    active: Vec<Active>,
}

fn segment(segmenter: &Segmenter, audio: &[f32]) -> Result<Vec<Window>, OnnxError> {
    let hop = HOP_FRAMES * FRAME_SAMPLES;
    let n = if audio.len() <= WINDOW_SAMPLES {
        1
    } else {
        (audio.len() - WINDOW_SAMPLES).div_ceil(hop) + 1
    };
    let starts: Vec<usize> = (0..n).map(|i| i * hop).collect();
    let mut out = Vec::with_capacity(n);
    for batch in starts.chunks(WINDOW_BATCH) {
        let slices: Vec<&[f32]> = batch
            .iter()
            .map(|&s| &audio[s..(s + WINDOW_SAMPLES).min(audio.len())])
            .collect();
        for (&start, active) in batch.iter().zip(segmenter.activity(&slices)?) {
            out.push(Window {
                first_frame: start / FRAME_SAMPLES,
                active,
            });
        }
    }
    Ok(out)
}

/// Voices per frame: the windows covering a frame, averaged and rounded.
fn speaker_count(windows: &[Window], frames: usize) -> Vec<u8> {
    let mut sum = vec![0u32; frames];
    let mut cover = vec![0u32; frames];
    for w in windows {
        for (f, a) in w.active.iter().enumerate() {
            let g = w.first_frame + f;
            if g < frames {
                sum[g] += a.iter().filter(|&&x| x).count() as u32;
                cover[g] += 1;
            }
        }
    }
    sum.iter()
        .zip(&cover)
        .map(|(&s, &c)| {
            if c == 0 {
                0
            } else {
                ((s as f32 / c as f32).round()) as u8
            }
        })
        .collect()
}

/// Frame ranges [start, end) to take voiceprints from.
fn stretches(count: &[u8]) -> Vec<(usize, usize)> {
    // Runs of speech, pauses shorter than BRIDGED_GAP_FRAMES bridged.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (g, &c) in count.iter().enumerate() {
        if c == 0 {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if g - *end < BRIDGED_GAP_FRAMES => *end = g + 1,
            _ => runs.push((g, g + 1)),
        }
    }
    let mut out = Vec::new();
    for (start, end) in runs {
        if end - start < MIN_RUN_FRAMES {
            continue;
        }
        if end - start <= STRETCH_FRAMES {
            out.push((start, end));
            continue;
        }
        let mut s = start;
        while s + STRETCH_FRAMES <= end {
            out.push((s, s + STRETCH_FRAMES));
            s += STRETCH_HOP_FRAMES;
        }
        if out.last().is_some_and(|&(_, e)| e < end) {
            out.push((end - STRETCH_FRAMES, end));
        }
    }
    out
}

/// The audio of a frame's own stretch.
fn frame_samples(g: usize, audio: &[f32]) -> &[f32] {
    let start = (g * FRAME_SAMPLES + FRAME_CENTRE - FRAME_SAMPLES / 2).min(audio.len());
    &audio[start..(start + FRAME_SAMPLES).min(audio.len())]
}

/// A voiceprint for each stretch that holds enough single-voice audio.
fn voiceprints(
    encoder: &SpeakerEncoder,
    audio: &[f32],
    count: &[u8],
    stretches: &[(usize, usize)],
) -> Result<Vec<Option<Voiceprint>>, OnnxError> {
    let mut out = Vec::with_capacity(stretches.len());
    for batch in stretches.chunks(STRETCH_BATCH) {
        let mut mels: Vec<Vec<[f32; BANDS]>> = Vec::new();
        let mut usable = Vec::new();
        for &(start, end) in batch {
            let mut samples: Vec<f32> = (start..end)
                .filter(|&g| count[g] == 1)
                .flat_map(|g| frame_samples(g, audio).iter().copied())
                .collect();
            if samples.len() < MIN_STRETCH_SAMPLES {
                usable.push(false);
                continue;
            }
            normalize_volume(&mut samples);
            mels.push(encoder.mel().frames(&samples));
            usable.push(true);
        }
        let mut prints = encoder.embed_mel(&mels)?.into_iter();
        out.extend(
            usable
                .into_iter()
                .map(|u| if u { prints.next() } else { None }),
        );
    }
    Ok(out)
}

/// The speakers' centroids: Ward clustering of (at most MAX_CLUSTERED evenly spread) voiceprints
/// into `k`, merged into one when they are the same voice: very alike, or rather alike when
/// there are few voiceprints. Ordered by first appearance.
///
/// Measured on recordings of one voice and of two: the centroids of two voices were 0.69–0.90
/// alike (10 tadhack calls, the pyannote sample); those of one voice split in two 0.89–0.97 over
/// long recordings (4 of 5 above 0.9) and 0.76–0.85 over clips of a few seconds.
fn centroids(prints: &[Voiceprint], k: usize) -> Vec<Voiceprint> {
    let step = prints.len().div_ceil(MAX_CLUSTERED).max(1);
    let sample: Vec<&Voiceprint> = prints.iter().step_by(step).collect();
    let labels = ward(&sample, k);
    let mut order: Vec<usize> = Vec::new();
    for &l in &labels {
        if !order.contains(&l) {
            order.push(l);
        }
    }
    let mut cents: Vec<Voiceprint> = order
        .iter()
        .map(|&c| {
            let members = sample.iter().zip(&labels).filter(|&(_, &l)| l == c);
            unit(mean(members.map(|(p, _)| p.as_slice())))
        })
        .collect();
    let same_voice = if sample.len() < FEW_PRINTS {
        LIKELY_SAME_VOICE
    } else {
        SAME_VOICE
    };
    if cents.len() == 2 && similarity(&cents[0], &cents[1]) > same_voice {
        cents = vec![unit(mean(sample.iter().map(|p| p.as_slice())))];
    }
    cents
}

fn mean<'a>(vs: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum = vec![0f32; DIM];
    let mut n = 0;
    for v in vs {
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        n += 1;
    }
    sum.iter_mut().for_each(|s| *s /= n.max(1) as f32);
    sum
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Each frame's speaker by the voiceprints of the stretches covering it; a frame no stretch
/// covers takes the label of the nearest covered frame.
fn frame_labels(
    stretches: &[(usize, usize)],
    prints: &[Voiceprint],
    centroids: &[Voiceprint],
    frames: usize,
) -> Vec<usize> {
    let k = centroids.len();
    let mut score = vec![0f32; frames * k];
    let mut covered = vec![false; frames];
    for (&(start, end), p) in stretches.iter().zip(prints) {
        let sims: Vec<f32> = centroids.iter().map(|c| similarity(p, c)).collect();
        for g in start..end.min(frames) {
            covered[g] = true;
            for (s, sim) in score[g * k..(g + 1) * k].iter_mut().zip(&sims) {
                *s += sim;
            }
        }
    }
    let mut labels: Vec<Option<usize>> = (0..frames)
        .map(|g| {
            covered[g].then(|| {
                let row = &score[g * k..(g + 1) * k];
                (0..k)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0)
            })
        })
        .collect();
    // Nearest covered frame: the distance to one on each side, by two sweeps.
    let mut left: Vec<Option<(usize, usize)>> = vec![None; frames];
    let mut last = None;
    for g in 0..frames {
        if let Some(l) = labels[g] {
            last = Some((g, l));
        }
        left[g] = last;
    }
    let mut next: Option<(usize, usize)> = None;
    for g in (0..frames).rev() {
        if let Some(l) = labels[g] {
            next = Some((g, l));
            continue;
        }
        labels[g] = match (left[g], next) {
            (Some((lg, l)), Some((ng, n))) => Some(if g - lg <= ng - g { l } else { n }),
            (Some((_, l)), None) | (None, Some((_, l))) => Some(l),
            (None, None) => Some(0),
        };
    }
    labels.into_iter().map(|l| l.unwrap_or(0)).collect()
}

/// Per frame and call speaker: how many windows' local speakers say that speaker talks there.
fn link_windows(windows: &[Window], labels: &[usize], k: usize, frames: usize) -> Vec<f32> {
    let mut score = vec![0f32; frames * k];
    for w in windows {
        let in_call = |f: usize| w.first_frame + f < frames;
        // Votes of each local speaker's frames for the call speakers, alone-frames preferred.
        let mut votes = [[0usize; MAX_SPEAKERS]; 3];
        for (local, row) in votes.iter_mut().enumerate() {
            let alone = |a: &Active| a[local] && a.iter().filter(|&&x| x).count() == 1;
            let mut any = false;
            for (f, a) in w.active.iter().enumerate().filter(|&(f, _)| in_call(f)) {
                if alone(a) {
                    row[labels[w.first_frame + f].min(MAX_SPEAKERS - 1)] += 1;
                    any = true;
                }
            }
            if !any {
                for (f, a) in w.active.iter().enumerate().filter(|&(f, _)| in_call(f)) {
                    if a[local] {
                        row[labels[w.first_frame + f].min(MAX_SPEAKERS - 1)] += 1;
                    }
                }
            }
        }
        let assigned = best_assignment(&votes, k);
        for (local, row) in votes.iter().enumerate() {
            let total: usize = row.iter().sum();
            if total == 0 {
                continue;
            }
            let mut sorted = row[..k].to_vec();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let runner_up = sorted.get(1).copied().unwrap_or(0);
            let merged =
                runner_up as f32 >= MERGED_SHARE * total as f32 && runner_up >= MERGED_MIN_FRAMES;
            for (f, a) in w.active.iter().enumerate().filter(|&(f, _)| in_call(f)) {
                if !a[local] {
                    continue;
                }
                let g = w.first_frame + f;
                let to = if merged {
                    Some(labels[g])
                } else {
                    assigned[local]
                };
                if let Some(s) = to {
                    score[g * k + s] += 1.0;
                }
            }
        }
    }
    score
}

/// Local speakers (3) to call speakers (k ≤ 8), one to one, with the most votes in total.
fn best_assignment(votes: &[[usize; MAX_SPEAKERS]; 3], k: usize) -> [Option<usize>; 3] {
    let mut best = ([None; 3], 0usize);
    let options: Vec<Option<usize>> = std::iter::once(None).chain((0..k).map(Some)).collect();
    for &a in &options {
        for &b in &options {
            for &c in &options {
                let pick = [a, b, c];
                let used: Vec<usize> = pick.iter().flatten().copied().collect();
                if (1..used.len()).any(|i| used[..i].contains(&used[i])) {
                    continue;
                }
                let total = pick
                    .iter()
                    .enumerate()
                    .filter_map(|(l, s)| s.map(|s| votes[l][s]))
                    .sum::<usize>();
                if total > best.1 {
                    best = (pick, total);
                }
            }
        }
    }
    best.0
}

/// Who talks in each frame: as many speakers as the count (at most two), best scored first.
fn assign(count: &[u8], scores: &[f32]) -> Vec<Vec<usize>> {
    let k = scores.len() / count.len().max(1);
    count
        .iter()
        .enumerate()
        .map(|(g, &c)| {
            let row = &scores[g * k..(g + 1) * k];
            let mut order: Vec<usize> = (0..k).filter(|&s| row[s] > 0.0).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            order.truncate(usize::from(c.min(2)));
            order
        })
        .collect()
}

/// Every speaking frame to one speaker.
fn count_only(count: &[u8]) -> Vec<Vec<usize>> {
    count
        .iter()
        .map(|&c| if c > 0 { vec![0] } else { Vec::new() })
        .collect()
}

fn frame_ms(g: usize) -> u64 {
    ((g * FRAME_SAMPLES + FRAME_CENTRE - FRAME_SAMPLES / 2) / 16) as u64
}

/// Frame speakers into turns, speakers renumbered by first speech.
fn from_frames(who: &[Vec<usize>], k: usize, voiceprints: Vec<Voiceprint>) -> Diarization {
    let mut turns: Vec<SpeakerTurn> = Vec::new();
    let mut open: Vec<Option<usize>> = vec![None; k]; // index into turns of a speaker's open turn
    for (g, speakers) in who.iter().enumerate() {
        for (s, open) in open.iter_mut().enumerate() {
            let talking = speakers.contains(&s);
            match (*open, talking) {
                (Some(t), true) => turns[t].end_ms = frame_ms(g + 1),
                (None, true) => {
                    *open = Some(turns.len());
                    turns.push(SpeakerTurn {
                        speaker: s,
                        start_ms: frame_ms(g),
                        end_ms: frame_ms(g + 1),
                    });
                }
                (_, false) => *open = None,
            }
        }
    }
    let mut order: Vec<usize> = Vec::new();
    for t in &turns {
        if !order.contains(&t.speaker) {
            order.push(t.speaker);
        }
    }
    for t in &mut turns {
        t.speaker = order.iter().position(|&s| s == t.speaker).expect("seen");
    }
    let voiceprints = order
        .iter()
        .filter_map(|&s| voiceprints.get(s).cloned())
        .collect();
    Diarization {
        speakers: order.len(),
        turns,
        voiceprints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speakers::cluster::point;

    #[test]
    fn stretches_cover_long_runs_and_skip_short_ones() {
        let mut count = vec![0u8; 400];
        count[10..40].iter_mut().for_each(|c| *c = 1); // 0.5 s: too short
        count[100..300].iter_mut().for_each(|c| *c = 1);
        count[305..330].iter_mut().for_each(|c| *c = 2); // bridged into the run before
        let s = stretches(&count);
        assert_eq!(s.first(), Some(&(100, 195)));
        assert_eq!(s.last(), Some(&(235, 330)));
        assert!(s.windows(2).all(|w| w[1].0 - w[0].0 <= STRETCH_HOP_FRAMES));
    }

    #[test]
    fn one_local_speaker_per_call_speaker() {
        let mut votes = [[0usize; MAX_SPEAKERS]; 3];
        votes[0][0] = 50;
        votes[1][0] = 40;
        votes[1][1] = 30;
        votes[2][1] = 10;
        assert_eq!(best_assignment(&votes, 2), [Some(0), Some(1), None]);
    }

    #[test]
    fn frames_become_turns_numbered_by_first_speech() {
        let who = vec![vec![], vec![1], vec![1], vec![1, 0], vec![0], vec![]];
        let d = from_frames(&who, 2, vec![point(0.0), point(1.0)]);
        assert_eq!(d.speakers, 2);
        assert_eq!(d.turns[0].speaker, 0);
        assert_eq!(
            (d.turns[0].start_ms, d.turns[0].end_ms),
            (frame_ms(1), frame_ms(4))
        );
        assert_eq!(d.turns[1].speaker, 1);
        assert_eq!(d.voiceprints[0], point(1.0));
        assert_eq!(d.speaker_of(frame_ms(4), frame_ms(5)), Some(1));
        assert_eq!(d.speaker_of(0, frame_ms(1)), None);
        assert_eq!(d.nearest_speaker(0), Some(0));
    }
}
