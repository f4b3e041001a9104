//! Where tensors live: `cpu` (default) or `cuda:N` when built with
//! `--features cuda`.

use candle_core::Device;

use crate::{MlError, Result};

/// Parses a device name as the CLI and the worker spell it.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ => match name.strip_prefix("cuda") {
            Some(rest) => {
                let ordinal = match rest.strip_prefix(':') {
                    None if rest.is_empty() => 0,
                    Some(n) => n.parse::<usize>().map_err(|_| MlError::arg("device", format!("'{name}' is not cpu or cuda:N")))?,
                    None => return Err(MlError::arg("device", format!("'{name}' is not cpu or cuda:N"))),
                };
                cuda(name, ordinal)
            }
            None => Err(MlError::arg("device", format!("'{name}' is not a device; use cpu or cuda:N"))),
        },
    }
}

#[cfg(feature = "cuda")]
fn cuda(name: &str, ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| MlError::Device(name.into(), e.to_string()))
}

#[cfg(not(feature = "cuda"))]
fn cuda(name: &str, _ordinal: usize) -> Result<Device> {
    Err(MlError::Device(name.into(), "this build has no GPU support; rebuild with `--features cuda`".into()))
}

/// A short name for reports.
pub fn device_name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_and_bad_ones_explained() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        let err = parse_device("gpu").unwrap_err().to_string();
        assert!(err.contains("use cpu or cuda:N"), "{err}");
        assert!(parse_device("cuda:x").is_err());
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda:0").unwrap_err().to_string().contains("--features cuda"));
    }
}
