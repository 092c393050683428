//! Patch layout on the host. Training works in token space: the input is cut into patches on the
//! data thread, the network's per-token outputs are scored against targets cut the same way, and
//! the volume is never reassembled on the device (an 8-axis permute, and its backward, per step).
//!
//! The batched twins ([`patchify_batch_values`], [`unpatchify_values`]) are the CPU backend's
//! [`super::patchify`] and [`super::unpatchify`]: burn-flex runs an 8-axis permute through a
//! general strided iterator, a third of an inference pass on demo-cpu (issue 11's profile),
//! where these copy whole rows of `patch` values, in parallel.

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};
use rayon::prelude::*;

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

/// [`patchify_values`] of every volume of a batch, in parallel over tokens.
///
/// # Shapes
/// - values: `batch · channels · z · y · x` → `batch · tokens · channels · patch³`
pub fn patchify_batch_values(
    values: &[f32],
    batch: usize,
    channels: usize,
    shape_zyx: [usize; 3],
    patch: usize,
) -> Vec<f32> {
    let [nz, ny, nx] = shape_zyx;
    let (gy, gx) = (ny / patch, nx / patch);
    let tokens = (nz / patch) * gy * gx;
    let token_len = channels * patch * patch * patch;
    let mut out = vec![0.0_f32; batch * tokens * token_len];
    if token_len == 0 {
        return out;
    }
    out.par_chunks_mut(token_len)
        .enumerate()
        .for_each(|(index, token)| {
            let (b, t) = (index / tokens, index % tokens);
            let (tz, ty, tx) = (t / (gy * gx), (t / gx) % gy, t % gx);
            let mut rows = token.chunks_exact_mut(patch);
            for c in 0..channels {
                for z in tz * patch..(tz + 1) * patch {
                    for y in ty * patch..(ty + 1) * patch {
                        let row = (((b * channels + c) * nz + z) * ny + y) * nx + tx * patch;
                        if let Some(out_row) = rows.next() {
                            out_row.copy_from_slice(&values[row..row + patch]);
                        }
                    }
                }
            }
        });
    out
}

/// Reassembles per-token patches into volumes: the inverse of [`patchify_batch_values`], in
/// parallel over output planes.
///
/// # Shapes
/// - tokens: `batch · tokens · channels · patch³` → `batch · channels · z · y · x`, with
///   `tokens = gz · gy · gx` and `(z, y, x) = patch · (gz, gy, gx)`
pub fn unpatchify_values(
    tokens: &[f32],
    batch: usize,
    channels: usize,
    grid: [usize; 3],
    patch: usize,
) -> Vec<f32> {
    let [gz, gy, gx] = grid;
    let (nz, ny, nx) = (gz * patch, gy * patch, gx * patch);
    let patch_volume = patch * patch * patch;
    let token_len = channels * patch_volume;
    let mut out = vec![0.0_f32; batch * channels * nz * ny * nx];
    if patch == 0 || out.is_empty() {
        return out;
    }
    out.par_chunks_mut(ny * nx)
        .enumerate()
        .for_each(|(index, plane)| {
            let (bc, z) = (index / nz, index % nz);
            let (b, c) = (bc / channels, bc % channels);
            let (tz, pz) = (z / patch, z % patch);
            for (y, out_row) in plane.chunks_exact_mut(nx).enumerate() {
                let (ty, py) = (y / patch, y % patch);
                for (tx, out_values) in out_row.chunks_exact_mut(patch).enumerate() {
                    let token = (tz * gy + ty) * gx + tx;
                    let start =
                        (b * gz * gy * gx + token) * token_len + c * patch_volume + (pz * patch + py) * patch;
                    out_values.copy_from_slice(&tokens[start..start + patch]);
                }
            }
        });
    out
}

/// [`super::patchify`] with burn's reshape and permute (any backend, autodiff included).
///
/// # Shapes
/// - x: `[batch, channels, z, y, x]` → `[batch, tokens, channels · patch³]`
pub fn patchify_with_ops<B: Backend>(x: Tensor<B, 5>, patch: usize) -> Tensor<B, 3> {
    let [batch, channels, nz, ny, nx] = x.dims();
    let (gz, gy, gx) = (nz / patch, ny / patch, nx / patch);
    x.reshape([batch, channels, gz, patch, gy, patch, gx, patch])
        .permute([0, 2, 4, 6, 1, 3, 5, 7])
        .reshape([batch, gz * gy * gx, channels * patch * patch * patch])
}

/// [`super::unpatchify`] with burn's reshape and permute (any backend, autodiff included).
///
/// # Shapes
/// - tokens: `[batch, tokens, channels · patch³]` → `[batch, channels, z, y, x]`
pub fn unpatchify_with_ops<B: Backend>(
    tokens: Tensor<B, 3>,
    batch: usize,
    channels: usize,
    grid: [usize; 3],
    patch: usize,
) -> Tensor<B, 5> {
    let [gz, gy, gx] = grid;
    tokens
        .reshape([batch, gz, gy, gx, channels, patch, patch, patch])
        .permute([0, 4, 1, 5, 2, 6, 3, 7])
        .reshape([batch, channels, gz * patch, gy * patch, gx * patch])
}

/// [`patchify_with_ops`] in tensors of at most four axes (three swaps of two merged axes), for
/// backends that hold no more than six (burn-ndarray); same result.
///
/// # Shapes
/// - x: `[batch, channels, z, y, x]` → `[batch, tokens, channels · patch³]`
pub fn patchify_in_four_axes<B: Backend>(x: Tensor<B, 5>, patch: usize) -> Tensor<B, 3> {
    let [batch, channels, nz, ny, nx] = x.dims();
    let (gz, gy, gx) = (nz / patch, ny / patch, nx / patch);
    // b c (gz pz) y x → b gz c (pz y x) → (b gz) gy (c pz) (py x) → (b gz gy) gx (c pz py) px.
    x.reshape([batch, channels, gz, patch * ny * nx])
        .swap_dims(1, 2)
        .reshape([batch * gz, channels * patch, gy, patch * nx])
        .swap_dims(1, 2)
        .reshape([batch * gz * gy, channels * patch * patch, gx, patch])
        .swap_dims(1, 2)
        .reshape([batch, gz * gy * gx, channels * patch * patch * patch])
}

/// The inverse of [`patchify_in_four_axes`] ([`unpatchify_with_ops`] in at most four axes).
///
/// # Shapes
/// - tokens: `[batch, tokens, channels · patch³]` → `[batch, channels, z, y, x]`
pub fn unpatchify_in_four_axes<B: Backend>(
    tokens: Tensor<B, 3>,
    batch: usize,
    channels: usize,
    grid: [usize; 3],
    patch: usize,
) -> Tensor<B, 5> {
    let [gz, gy, gx] = grid;
    tokens
        .reshape([batch * gz * gy, gx, channels * patch * patch, patch])
        .swap_dims(1, 2)
        .reshape([batch * gz, gy, channels * patch, patch * gx * patch])
        .swap_dims(1, 2)
        .reshape([batch, gz, channels, patch * gy * patch * gx * patch])
        .swap_dims(1, 2)
        .reshape([batch, channels, gz * patch, gy * patch, gx * patch])
}

/// [`patchify_in_four_axes`] (every backend holds four axes) on a backend's float primitive (the default of
/// [`super::EngineBackend::patchify`] and the CPU backend's fallback).
pub fn patchify_primitive<B: Backend>(x: FloatTensor<B>, patch: usize) -> FloatTensor<B> {
    let x = Tensor::<B, 5>::from_primitive(TensorPrimitive::Float(x));
    patchify_in_four_axes(x, patch).into_primitive().tensor()
}

/// [`unpatchify_in_four_axes`] on a backend's float primitive.
pub fn unpatchify_primitive<B: Backend>(
    tokens: FloatTensor<B>,
    batch: usize,
    channels: usize,
    grid: [usize; 3],
    patch: usize,
) -> FloatTensor<B> {
    let tokens = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(tokens));
    unpatchify_in_four_axes(tokens, batch, channels, grid, patch)
        .into_primitive()
        .tensor()
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

    #[test]
    fn patchify_in_four_axes_equals_the_eight_axis_permutation_and_inverts() {
        let device = Default::default();
        let (batch, channels, patch, grid) = (2, 3, 2, [2usize, 3, 4]);
        let shape = [batch, channels, grid[0] * patch, grid[1] * patch, grid[2] * patch];
        let count: usize = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|i| i as f32).collect();
        let x = Tensor::<Flex, 5>::from_data(TensorData::new(values.clone(), shape), &device);
        let eight = patchify_with_ops(x.clone(), patch)
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let four = patchify_in_four_axes(x, patch);
        assert_eq!(four.clone().into_data().to_vec::<f32>().expect("f32"), eight);
        let back = unpatchify_in_four_axes(four, batch, channels, grid, patch);
        assert_eq!(back.dims(), shape);
        assert_eq!(back.into_data().to_vec::<f32>().expect("f32"), values);
    }
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

    /// A batch of 2 with 2 channels on a grid of 2 × 3 × 1 patches of 2: the batched host
    /// kernels against burn's reshape-and-permute on the same values.
    #[test]
    fn batched_host_kernels_equal_the_permutes_exactly() {
        let (batch, channels, grid, patch) = (2, 2, [2, 3, 1], 2);
        let shape = grid.map(|g| g * patch);
        let len = batch * channels * shape.iter().product::<usize>();
        let values: Vec<f32> = (0..len).map(|i| i as f32).collect();
        let tensor = Tensor::<Flex, 5>::from_data(
            TensorData::new(values.clone(), [batch, channels, shape[0], shape[1], shape[2]]),
            &Default::default(),
        );
        let tokens = patchify_with_ops(tensor, patch);
        let token_values = tokens.clone().into_data().to_vec::<f32>().expect("f32");
        assert_eq!(
            patchify_batch_values(&values, batch, channels, shape, patch),
            token_values
        );
        let back = unpatchify_with_ops(tokens, batch, channels, grid, patch);
        assert_eq!(back.into_data().to_vec::<f32>().expect("f32"), values);
        assert_eq!(
            unpatchify_values(&token_values, batch, channels, grid, patch),
            values
        );
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
