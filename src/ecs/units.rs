//! Task-level cpu and memory as ECS accepts them: numbers as strings
//! ("1024"), or with units ("1 vCPU", "0.5 vcpu", "2 GB", "512 MiB").
//! Source: RegisterTaskDefinitionRequest.cpu/.memory documentation.

/// CPU units (1024 per vCPU).
pub fn parse_task_cpu(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let num = lower.strip_suffix("vcpu")?.trim();
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| (v * 1024.0).round() as u64)
}

/// Memory in MiB.
pub fn parse_task_memory(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    let lower = t.to_ascii_lowercase();
    let (num, factor) = if let Some(n) = lower.strip_suffix("gib").or_else(|| lower.strip_suffix("gb")) {
        (n, 1024.0)
    } else if let Some(n) = lower.strip_suffix("mib").or_else(|| lower.strip_suffix("mb")) {
        (n, 1.0)
    } else {
        return None;
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then(|| (v * factor).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_forms() {
        assert_eq!(parse_task_cpu("1024"), Some(1024));
        assert_eq!(parse_task_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_task_cpu(".5 vcpu"), Some(512));
        assert_eq!(parse_task_cpu("fast"), None);
        assert_eq!(parse_task_memory("2 GB"), Some(2048));
        assert_eq!(parse_task_memory("1GB"), Some(1024));
        assert_eq!(parse_task_memory("512"), Some(512));
        assert_eq!(parse_task_memory("{{ .mem }}"), None);
    }
}
