//! Patch layout on the host. Training works in token space: the input is cut into patches on the
//! data thread, the network's per-token outputs are scored against targets cut the same way, and
//! the volume is never reassembled on the device (an 8-axis permute, and its backward, per step).

/// Cuts `[channels, z, y, x]` values (x fastest) into raster-ordered patches, each flattened
/// channel-first: the host twin of [`super::patchify`].
///
/// # Shapes
/// - values: `channels · z · y · x` → `tokens · channels · patch³`
pub fn patchify_values(values: &[f32], channels: usize, shape_zyx: [usize; 3], patch: usize) -> Vec<f32> {
    let [nz, ny, nx] = shape_zyx;
    let (gz, gy, gx) = (nz / patch, ny / patch, nx / patch);
    let mut out = Vec::with_capacity(values.len());
    for tz in 0..gz {
        for ty in 0..gy {
            for tx in 0..gx {
                for c in 0..channels {
                    for z in tz * patch..(tz + 1) * patch {
                        for y in ty * patch..(ty + 1) * patch {
                            let row = ((c * nz + z) * ny + y) * nx;
                            out.extend_from_slice(&values[row + tx * patch..row + (tx + 1) * patch]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Splits patchified values of `channels` channels into one `tokens · patch³` block per channel:
/// the layout of [`super::MedVisionLlama::forward_patches`]'s outputs.
///
/// # Shapes
/// - patches: `tokens · channels · patch³` → channels × `tokens · patch³`
pub fn split_channels(patches: &[f32], channels: usize, patch_volume: usize) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::with_capacity(patches.len() / channels.max(1)); channels];
    for token in patches.chunks(channels * patch_volume) {
        for (c, values) in token.chunks(patch_volume).enumerate() {
            out[c].extend_from_slice(values);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::patchify;
    use burn::backend::Flex;
    use burn::tensor::{Tensor, TensorData};

    #[test]
    fn host_patches_equal_the_tensor_patchify_exactly() {
        let (channels, shape, patch) = (2, [4, 6, 8], 2);
        let len = channels * shape.iter().product::<usize>();
        let values: Vec<f32> = (0..len).map(|i| i as f32).collect();
        let tensor = Tensor::<Flex, 5>::from_data(
            TensorData::new(values.clone(), [1, channels, shape[0], shape[1], shape[2]]),
            &Default::default(),
        );
        let want = patchify(tensor, patch).into_data().to_vec::<f32>().expect("f32");
        assert_eq!(patchify_values(&values, channels, shape, patch), want);
    }

    #[test]
    fn channels_split_per_token() {
        // Two tokens, two channels, patch volume 2: [t0c0 t0c0 t0c1 t0c1 t1c0 t1c0 t1c1 t1c1].
        let patches = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        assert_eq!(
            split_channels(&patches, 2, 2),
            vec![vec![1.0, 2.0, 5.0, 6.0], vec![3.0, 4.0, 7.0, 8.0]]
        );
    }
}
