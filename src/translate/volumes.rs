//! Task volumes and container mounts. host.sourcePath -> hostPath; Docker and
//! task-scoped volumes -> emptyDir; EFS -> a bound PersistentVolume and
//! claim of the EFS CSI driver when the cluster has it (`efs`); otherwise EFS,
//! FSx and configured-at-launch -> a PersistentVolumeClaim named after the
//! volume (warning: the claim must exist); volumesFrom -> the source container's mounts, readOnly kept;
//! sharedMemorySize -> a memory emptyDir at /dev/shm; tmpfs -> memory emptyDir.

use super::resources::mebibytes;
use super::{k8s_name, Ctx};
use crate::at;
use crate::diag::Code;
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource, PersistentVolumeClaimVolumeSource, Volume, VolumeMount};
use std::collections::{BTreeMap, HashSet};

pub struct PodVolumes {
    pub volumes: Vec<Volume>,
    /// Mounts per container index.
    pub mounts: Vec<Vec<VolumeMount>>,
}

pub fn build(ctx: &mut Ctx) -> PodVolumes {
    let task = ctx.task;
    let m = &task.model;
    let mut volumes = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut used: HashSet<String> = HashSet::new();
    for (i, v) in m.volumes.iter().enumerate() {
        let Some(ecs_name) = v.name.clone() else { continue };
        let name = unique(&mut used, &k8s_name(&ecs_name, "volume"));
        let path = at!(task, "volumes", i);
        let mut volume = Volume {
            name: name.clone(),
            ..Default::default()
        };
        if let Some(source) = v.host.as_ref().and_then(|h| h.source_path.clone()) {
            volume.host_path = Some(HostPathVolumeSource { path: source, type_: None });
        } else if let Some(pair) = (v.efs_volume_configuration.is_some() && ctx.options.integrations.efs_csi)
            .then(|| super::efs::objects(ctx, i, &ecs_name, &super::efs::claim_name(&ctx.meta.name, &name)))
            .flatten()
        {
            volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: pair.1.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            });
            super::efs::push(ctx, pair);
        } else if v.efs_volume_configuration.is_some()
            || v.fsx_windows_file_server_volume_configuration.is_some()
            || v.configured_at_launch == Some(true)
        {
            volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                claim_name: name.clone(),
                read_only: None,
            });
            ctx.warn(Code::NotCarriedOver, path, format!("volume \"{ecs_name}\" becomes the PersistentVolumeClaim \"{name}\": create it (e.g. with the EFS or FSx CSI driver) in the namespace"));
        } else {
            if v.docker_volume_configuration.as_ref().and_then(|d| d.scope.as_deref()) == Some("shared") {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(task, "volumes", i, "dockerVolumeConfiguration", "scope"),
                    format!("shared Docker volume \"{ecs_name}\" becomes a per-pod emptyDir: its data is not shared between tasks or kept"),
                );
            }
            if let Some(driver) = v
                .docker_volume_configuration
                .as_ref()
                .and_then(|d| d.driver.as_deref())
                .filter(|d| *d != "local")
            {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(task, "volumes", i, "dockerVolumeConfiguration", "driver"),
                    format!("Docker volume driver \"{driver}\" has no Kubernetes equivalent; an emptyDir is used"),
                );
            }
            volume.empty_dir = Some(EmptyDirVolumeSource::default());
        }
        names.insert(ecs_name, name);
        volumes.push(volume);
    }

    let own: Vec<Vec<VolumeMount>> = m
        .container_definitions
        .iter()
        .map(|c| {
            c.mount_points
                .iter()
                .filter_map(|mp| {
                    Some(VolumeMount {
                        name: names.get(mp.source_volume.as_deref()?)?.clone(),
                        mount_path: mp.container_path.clone()?,
                        read_only: mp.read_only.filter(|r| *r),
                        ..Default::default()
                    })
                })
                .collect()
        })
        .collect();

    let mut mounts = Vec::with_capacity(own.len());
    for (i, c) in m.container_definitions.iter().enumerate() {
        let mut list = own[i].clone();
        for (j, vf) in c.volumes_from.iter().enumerate() {
            let Some(src) = m
                .container_definitions
                .iter()
                .position(|o| o.name.is_some() && o.name == vf.source_container)
            else {
                continue;
            };
            if own[src].is_empty() {
                ctx.warn(
                    Code::NotCarriedOver,
                    at!(task, "containerDefinitions", i, "volumesFrom", j),
                    format!(
                        "\"{}\" declares no mountPoints: volumes its image declares (Dockerfile VOLUME) are not shared in Kubernetes",
                        vf.source_container.as_deref().unwrap_or_default()
                    ),
                );
            }
            for mount in &own[src] {
                if list.iter().any(|l| l.mount_path == mount.mount_path) {
                    continue;
                }
                let read_only = vf.read_only == Some(true) || mount.read_only == Some(true);
                list.push(VolumeMount {
                    read_only: read_only.then_some(true),
                    ..mount.clone()
                });
            }
        }
        let cname = k8s_name(c.name.as_deref().unwrap_or("container"), "container");
        if let Some(lp) = &c.linux_parameters {
            if let Some(size) = lp.shared_memory_size {
                let name = unique(&mut used, &format!("{}-shm", truncate(&cname, 58)));
                volumes.push(memory_volume(&name, size));
                list.push(VolumeMount {
                    name,
                    mount_path: "/dev/shm".into(),
                    ..Default::default()
                });
            }
            for (t, tmpfs) in lp.tmpfs.iter().enumerate() {
                let Some(path) = tmpfs.container_path.clone() else { continue };
                let name = unique(&mut used, &format!("{}-tmpfs-{t}", truncate(&cname, 50)));
                volumes.push(memory_volume(&name, tmpfs.size.unwrap_or(0)));
                list.push(VolumeMount {
                    name,
                    mount_path: path,
                    ..Default::default()
                });
                if !tmpfs.mount_options.is_empty() {
                    ctx.warn(
                        Code::NotCarriedOver,
                        at!(task, "containerDefinitions", i, "linuxParameters", "tmpfs", t, "mountOptions"),
                        "tmpfs mount options have no Kubernetes equivalent; the memory emptyDir uses its defaults",
                    );
                }
            }
        }
        mounts.push(list);
    }
    PodVolumes { volumes, mounts }
}

fn memory_volume(name: &str, size_mib: i64) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            mode: None,
            size_limit: (size_mib > 0).then(|| mebibytes(size_mib.unsigned_abs())),
        }),
        ..Default::default()
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect::<String>().trim_end_matches('-').to_string()
}

/// A name not yet used in the pod (volume names are unique per pod).
fn unique(used: &mut HashSet<String>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{}-{n}", truncate(base, 60));
        n += 1;
    }
    name
}
