//! Ward agglomerative clustering of voiceprints, by the nearest-neighbour chain.

use super::encoder::Voiceprint;

/// Ward agglomerative clustering into at most `k` clusters, by the nearest-neighbour chain
/// (O(n²)): returns a cluster index per point.
pub fn ward(points: &[&Voiceprint], k: usize) -> Vec<usize> {
    let n = points.len();
    if n <= k {
        return (0..n).collect();
    }
    // Squared Euclidean distances; Ward's merge cost of two singletons is half of it, and the
    // Lance–Williams update keeps the cost of merged clusters.
    let mut d = vec![0f32; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let dist: f32 = points[i]
                .iter()
                .zip(points[j].iter())
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            d[i * n + j] = dist;
            d[j * n + i] = dist;
        }
    }
    let mut size = vec![1usize; n];
    let mut alive = vec![true; n];
    let mut merges: Vec<(f32, usize, usize)> = Vec::with_capacity(n - 1);
    let mut chain: Vec<usize> = Vec::new();
    for _ in 0..n - 1 {
        if chain.is_empty() {
            chain.push((0..n).find(|&i| alive[i]).expect("two clusters left"));
        }
        loop {
            let a = *chain.last().expect("chain");
            let prev = chain.len().checked_sub(2).map(|i| chain[i]);
            // The nearest neighbour, preferring the previous link on ties (so chains end).
            let mut best = prev.unwrap_or(usize::MAX);
            let mut best_d = prev.map_or(f32::INFINITY, |p| d[a * n + p]);
            for b in (0..n).filter(|&b| alive[b] && b != a) {
                if d[a * n + b] < best_d {
                    best = b;
                    best_d = d[a * n + b];
                }
            }
            if Some(best) == prev {
                chain.truncate(chain.len() - 2);
                let (keep, gone) = (a.min(best), a.max(best));
                merges.push((best_d, keep, gone));
                for c in (0..n).filter(|&c| alive[c] && c != keep && c != gone) {
                    let (na, nb, nc) = (size[keep] as f32, size[gone] as f32, size[c] as f32);
                    let merged = ((na + nc) * d[keep * n + c] + (nb + nc) * d[gone * n + c]
                        - nc * d[keep * n + gone])
                        / (na + nb + nc);
                    d[keep * n + c] = merged;
                    d[c * n + keep] = merged;
                }
                size[keep] += size[gone];
                alive[gone] = false;
                break;
            }
            chain.push(best);
        }
    }
    // Ward is reducible, so the merges sorted by cost are the hierarchy; stop k clusters short.
    merges.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for &(_, a, b) in &merges[..n - k] {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        parent[rb] = ra;
    }
    let mut ids: Vec<usize> = Vec::new();
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            ids.iter().position(|&x| x == r).unwrap_or_else(|| {
                ids.push(r);
                ids.len() - 1
            })
        })
        .collect()
}

/// A unit voiceprint at an angle in its first plane (tests).
#[cfg(test)]
pub(crate) fn point(angle: f32) -> Voiceprint {
    let mut v = vec![0f32; super::encoder::DIM];
    v[0] = angle.cos();
    v[1] = angle.sin();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ward_splits_two_groups_and_keeps_outliers_in_them() {
        let pts: Vec<Voiceprint> = [0.0, 0.05, 0.1, 0.12, 1.5, 1.55, 1.6, 0.3]
            .iter()
            .map(|&a| point(a))
            .collect();
        let refs: Vec<&Voiceprint> = pts.iter().collect();
        let labels = ward(&refs, 2);
        assert_eq!(labels, vec![0, 0, 0, 0, 1, 1, 1, 0]);
        assert_eq!(ward(&refs[..1], 2), vec![0]);
    }
}
