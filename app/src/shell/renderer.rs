//! Which of eframe's renderers the window uses: wgpu when an adapter is found (the 3D view then
//! draws its surfaces on the GPU), glow otherwise (the 3D view draws on the CPU), with the reason.
//! `MVL_RENDERER=glow` or `MVL_RENDERER=wgpu` chooses by hand.

use eframe::Renderer;

/// The renderer chosen at start, and a line saying why (shown by the 3D view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RendererChoice {
    /// The renderer to start with.
    pub renderer: Renderer,
    /// Why: the adapter found, or why none was.
    pub note: String,
}

/// The wgpu back ends eframe tries (its own default, or `WGPU_BACKEND` when set).
fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY | wgpu::Backends::GL)
}

/// The renderer for this machine: `MVL_RENDERER` when set, else wgpu when it finds an adapter.
pub fn choose() -> RendererChoice {
    choose_with(std::env::var("MVL_RENDERER").ok().as_deref(), probe_wgpu)
}

/// [`choose`] with the variable's value and the probe given (tests).
pub fn choose_with(variable: Option<&str>, probe: impl FnOnce() -> Result<String, String>) -> RendererChoice {
    match variable.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("glow") => {
            return RendererChoice {
                renderer: Renderer::Glow,
                note: "glow, as MVL_RENDERER asks: the 3D view draws on the CPU".into(),
            };
        }
        Some(v) if v.eq_ignore_ascii_case("wgpu") => {
            return RendererChoice {
                renderer: Renderer::Wgpu,
                note: "wgpu, as MVL_RENDERER asks".into(),
            };
        }
        _ => {}
    }
    match probe() {
        Ok(adapter) => RendererChoice {
            renderer: Renderer::Wgpu,
            note: format!("wgpu on {adapter}"),
        },
        Err(why) => RendererChoice {
            renderer: Renderer::Glow,
            note: format!("glow, because {why}: the 3D view draws on the CPU"),
        },
    }
}

/// The adapter wgpu would pick (name and back end), or why there is none.
///
/// # Errors
/// No adapter was found.
pub fn probe_wgpu() -> Result<String, String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: backends(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
        .map_err(|e| format!("wgpu found no graphics adapter ({e})"))?;
    let info = adapter.get_info();
    Ok(format!("{} ({:?})", info.name, info.backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_wins_and_the_probe_decides_otherwise() {
        let never = || -> Result<String, String> { panic!("the probe must not run") };
        assert_eq!(choose_with(Some("glow"), never).renderer, Renderer::Glow);
        assert_eq!(choose_with(Some(" WGPU "), never).renderer, Renderer::Wgpu);
        let found = choose_with(None, || Ok("llvmpipe (Vulkan)".into()));
        assert_eq!(found.renderer, Renderer::Wgpu);
        assert!(found.note.contains("llvmpipe"), "{}", found.note);
        let none = choose_with(Some("other"), || Err("wgpu found no graphics adapter".into()));
        assert_eq!(none.renderer, Renderer::Glow);
        assert!(none.note.contains("no graphics adapter"), "{}", none.note);
    }
}
