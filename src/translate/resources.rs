//! ECS CPU units and MiB as Kubernetes quantities. 1024 CPU units are one
//! core, so a unit is 1000/1024 millicores, rounded up to a whole millicore.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub fn cpu_units(units: u64) -> Quantity {
    let milli = units.saturating_mul(1000).div_ceil(1024).max(1);
    if milli.is_multiple_of(1000) {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

/// In the canonical form the API server stores (`1024Mi` is stored as `1Gi`),
/// so what ecskube applies and what it reads back compare equal.
pub fn mebibytes(mib: u64) -> Quantity {
    if mib != 0 && mib.is_multiple_of(1024 * 1024) {
        Quantity(format!("{}Ti", mib / (1024 * 1024)))
    } else if mib != 0 && mib.is_multiple_of(1024) {
        Quantity(format!("{}Gi", mib / 1024))
    } else {
        Quantity(format!("{mib}Mi"))
    }
}

/// The MiB of a quantity [`mebibytes`] made.
pub fn mebibytes_of(q: &Quantity) -> Option<u64> {
    let s = q.0.as_str();
    let (n, factor) = if let Some(n) = s.strip_suffix("Ti") {
        (n, 1024 * 1024)
    } else if let Some(n) = s.strip_suffix("Gi") {
        (n, 1024)
    } else {
        (s.strip_suffix("Mi")?, 1)
    };
    n.parse::<u64>().ok()?.checked_mul(factor)
}

pub fn gibibytes(gib: u64) -> Quantity {
    Quantity(format!("{gib}Gi"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_units_become_millicores_rounded_up() {
        assert_eq!(cpu_units(10).0, "10m");
        assert_eq!(cpu_units(1).0, "1m");
        assert_eq!(cpu_units(256).0, "250m");
        assert_eq!(cpu_units(1024).0, "1");
        assert_eq!(cpu_units(100).0, "98m");
        assert_eq!(mebibytes(500).0, "500Mi");
    }

    #[test]
    fn memory_is_written_as_the_api_server_stores_it() {
        for (mib, text) in [
            (512, "512Mi"),
            (1024, "1Gi"),
            (1536, "1536Mi"),
            (2048, "2Gi"),
            (30720, "30Gi"),
            (1 << 20, "1Ti"),
            (0, "0Mi"),
        ] {
            assert_eq!(mebibytes(mib).0, text);
            assert_eq!(mebibytes_of(&mebibytes(mib)), Some(mib));
        }
        assert_eq!(cpu_units(2048).0, "2");
    }
}
