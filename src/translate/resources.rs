//! ECS CPU units and MiB as Kubernetes quantities. 1024 CPU units are one
//! core, so a unit is 1000/1024 millicores, rounded up to a whole millicore.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub fn cpu_units(units: u64) -> Quantity {
    let milli = units.saturating_mul(1000).div_ceil(1024).max(1);
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

pub fn mebibytes(mib: u64) -> Quantity {
    Quantity(format!("{mib}Mi"))
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
}
