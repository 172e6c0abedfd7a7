//! `make run` as a user runs it: the `ecskube-dev-cluster up` binary with
//! the real ecskube binary and the sample, read only through what it prints,
//! then Ctrl-C (SIGINT). A manifest with a typo beside the sample shows that
//! kubectl's refusal reaches the user and the cluster stays up.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn make_run_installs_ecskube_applies_the_sample_shows_it_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.json");
    let text = std::fs::read_to_string(repo("samples/ecsdeployment.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["metadata"]["name"] = "typo".into();
    let container = v["spec"]["Task"]["Properties"]["ContainerDefinitions"][0].as_object_mut().unwrap();
    let memory = container.remove("Memory").unwrap();
    container.insert("Memroy".into(), memory);
    std::fs::write(&typo, v.to_string()).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_ecskube-dev-cluster"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["up", "--ecskube", env!("CARGO_BIN_EXE_ecskube")])
        .arg(repo("samples/ecsdeployment.json"))
        .arg(&typo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // The one stdout line arrives once everything is applied and shown.
    let mut line = String::new();
    let started = Instant::now();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let kubeconfig = line.trim().strip_prefix("export KUBECONFIG=").map(str::to_owned);

    let kubectl = ecskube::devcluster::default_bin_dir().join("kubectl");
    let get = kubeconfig.as_ref().map(|k| {
        Command::new(&kubectl)
            .args(["--kubeconfig", k, "get", "ecsd", "-o", "name"])
            .output()
            .unwrap()
    });
    let work_dir = kubeconfig.as_ref().and_then(|k| Path::new(k).parent().map(Path::to_path_buf));

    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    let kubeconfig = kubeconfig.unwrap_or_else(|| panic!("no export line after {:?}: {line:?}\n{stderr}", started.elapsed()));

    assert!(status.success(), "{status}\n{stderr}");
    assert!(stderr.contains("installing ecskube (kubectl apply -k"), "{stderr}");
    assert!(stderr.contains("ecsdeployment.ecskube.ecskube/ecs-demo-deploy created"), "{stderr}");
    // kubectl's own refusal, with the path and the did-you-mean.
    assert!(stderr.contains("ContainerDefinitions[0].Memroy"), "{stderr}");
    assert!(stderr.contains("did you mean `Memory`"), "{stderr}");
    // The table: the ECSDeployment, its Deployment with its one replica, the Service, a running pod.
    let rows: Vec<Vec<&str>> = stderr.lines().map(|l| l.split_whitespace().collect()).collect();
    let row = |name: &str| rows.iter().find(|r| r.get(1).is_some_and(|n| n.starts_with(name)));
    assert!(row("ecsdeployment.ecskube.ecskube/ecs-demo-deploy").is_some(), "{stderr}");
    assert_eq!(row("deployment.apps/ecs-demo-deploy").map(|r| r[2]), Some("1/1"), "{stderr}");
    assert!(row("service/ecs-demo-deploy").is_some(), "{stderr}");
    assert!(row("pod/ecs-demo-deploy-").is_some_and(|r| r.contains(&"Running")), "{stderr}");
    assert!(stderr.trim_end().ends_with("stopped"), "{stderr}");

    // What the printed KUBECONFIG reached: the sample only (the typo was stored nowhere).
    let get = get.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "ecsdeployment.ecskube.ecskube/ecs-demo-deploy",
        "{kubeconfig}"
    );
    // And nothing is left behind on disk.
    let work_dir = work_dir.unwrap();
    assert!(!work_dir.exists(), "{} left behind", work_dir.display());
}
