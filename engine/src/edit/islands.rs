//! Island removal: the connected components ("islands") of one label, face-connected (each voxel
//! touches its 6 neighbours, as ITK's `ConnectedComponentImageFilter` by default), and which voxels
//! to clear to keep only the largest island or to drop the islands under a volume.

use super::label::{LabelValue, LabelVoxels};

/// Which islands of a label to remove.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IslandRule {
    /// Keep the largest island (the first found, in flat order, among equals); remove the rest.
    KeepLargest,
    /// Remove every island smaller than this many mL.
    SmallerThanMl(f64),
}

/// The islands of label `value` in `voxels` (x fastest, `shape`), each as its flat indices in
/// ascending order; islands are listed in the order of their first voxel.
pub fn islands<L: LabelValue>(voxels: &dyn LabelVoxels<L>, shape: [usize; 3], value: u32) -> Vec<Vec<usize>> {
    let [nx, ny, nz] = shape;
    let count = nx * ny * nz;
    if value == 0 || voxels.voxel_count() != count {
        return Vec::new();
    }
    let is_label = |index: usize| voxels.voxel(index).is_some_and(|v| v.label() == value);
    let mut seen = vec![false; count];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..count {
        if seen[start] || !is_label(start) {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut island = Vec::new();
        while let Some(index) = stack.pop() {
            island.push(index);
            let (x, y, z) = (index % nx, index / nx % ny, index / (nx * ny));
            let neighbours = [
                (x > 0).then(|| index - 1),
                (x + 1 < nx).then(|| index + 1),
                (y > 0).then(|| index - nx),
                (y + 1 < ny).then(|| index + nx),
                (z > 0).then(|| index - nx * ny),
                (z + 1 < nz).then(|| index + nx * ny),
            ];
            for neighbour in neighbours.into_iter().flatten() {
                if !seen[neighbour] && is_label(neighbour) {
                    seen[neighbour] = true;
                    stack.push(neighbour);
                }
            }
        }
        island.sort_unstable();
        found.push(island);
    }
    found
}

/// The flat indices to set to background so that label `value` keeps only what `rule` keeps;
/// ascending. `voxel_ml` is the volume of one voxel in mL.
pub fn island_removals<L: LabelValue>(
    voxels: &dyn LabelVoxels<L>,
    shape: [usize; 3],
    value: u32,
    voxel_ml: f64,
    rule: IslandRule,
) -> Vec<usize> {
    let found = islands(voxels, shape, value);
    let largest = found
        .iter()
        .enumerate()
        .max_by(|(ia, a), (ib, b)| a.len().cmp(&b.len()).then(ib.cmp(ia)))
        .map(|(i, _)| i);
    let mut removed: Vec<usize> = found
        .into_iter()
        .enumerate()
        .filter(|(i, island)| match rule {
            IslandRule::KeepLargest => Some(*i) != largest,
            IslandRule::SmallerThanMl(ml) => (island.len() as f64) * voxel_ml < ml,
        })
        .flat_map(|(_, island)| island)
        .collect();
    removed.sort_unstable();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Components by repeated relabelling to the smallest neighbour id until nothing changes: a
    /// different algorithm from the flood fill above.
    fn components_by_relaxation(voxels: &[u8], shape: [usize; 3], value: u8) -> Vec<Vec<usize>> {
        let [nx, ny, nz] = shape;
        let mut id: Vec<usize> = (0..voxels.len()).collect();
        loop {
            let mut changed = false;
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        let i = (z * ny + y) * nx + x;
                        if voxels[i] != value {
                            continue;
                        }
                        for (dx, dy, dz) in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
                            let (a, b, c) = (x + dx, y + dy, z + dz);
                            if a >= nx || b >= ny || c >= nz {
                                continue;
                            }
                            let j = (c * ny + b) * nx + a;
                            if voxels[j] == value && id[j] != id[i] {
                                let low = id[i].min(id[j]);
                                id[i] = low;
                                id[j] = low;
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (i, v) in voxels.iter().enumerate() {
            if *v == value {
                groups.entry(id[i]).or_default().push(i);
            }
        }
        groups.into_values().collect()
    }

    #[test]
    fn random_labels_split_into_the_components_a_relaxation_finds() {
        let shape = [9, 7, 6];
        let mut rng = Rng::new(5);
        for _ in 0..20 {
            let voxels: Vec<u8> = (0..shape.iter().product::<usize>())
                .map(|_| {
                    if rng.uniform() < 0.4 {
                        1
                    } else if rng.uniform() < 0.2 {
                        2
                    } else {
                        0
                    }
                })
                .collect();
            let mut ours = islands(&voxels, shape, 1);
            let mut expected = components_by_relaxation(&voxels, shape, 1);
            ours.sort();
            expected.sort();
            assert_eq!(ours, expected);
            assert!(ours.len() > 1, "the draw has several islands");
        }
    }

    #[test]
    fn keep_largest_and_a_volume_threshold_remove_what_they_say() {
        // Three islands of label 3 on a 10 × 4 × 3 grid: a 2 × 2 × 2 cube (8 voxels), a bar of 3
        // along x and one voxel; a diagonal neighbour does not connect. Label 5 is never touched.
        let shape = [10, 4, 3];
        let flat = |x: usize, y: usize, z: usize| (z * 4 + y) * 10 + x;
        let mut voxels = vec![0u8; 120];
        for (x, y, z) in [
            (0, 0, 0),
            (1, 0, 0),
            (0, 1, 0),
            (1, 1, 0),
            (0, 0, 1),
            (1, 0, 1),
            (0, 1, 1),
            (1, 1, 1),
        ] {
            voxels[flat(x, y, z)] = 3;
        }
        let bar = [flat(5, 2, 2), flat(6, 2, 2), flat(7, 2, 2)];
        for i in bar {
            voxels[i] = 3;
        }
        let single = flat(2, 2, 0); // touches the cube only diagonally
        voxels[single] = 3;
        voxels[flat(9, 3, 2)] = 5;
        let mut cut = vec![single];
        cut.extend(bar);
        cut.sort_unstable();
        assert_eq!(
            island_removals(&voxels, shape, 3, 0.5, IslandRule::KeepLargest),
            cut
        );
        // 0.5 mL a voxel: the single voxel is 0.5 mL, the bar 1.5 mL, the cube 4 mL.
        assert_eq!(
            island_removals(&voxels, shape, 3, 0.5, IslandRule::SmallerThanMl(1.0)),
            [single]
        );
        assert_eq!(
            island_removals(&voxels, shape, 3, 0.5, IslandRule::SmallerThanMl(1.5)),
            [single]
        );
        assert_eq!(
            island_removals(&voxels, shape, 3, 0.5, IslandRule::SmallerThanMl(1.6)),
            cut
        );
        assert!(island_removals(&voxels, shape, 5, 0.5, IslandRule::KeepLargest).is_empty());
        assert!(island_removals(&voxels, shape, 4, 0.5, IslandRule::KeepLargest).is_empty());
        assert!(island_removals(&voxels[1..].to_vec(), shape, 3, 0.5, IslandRule::KeepLargest).is_empty());
    }
}
