//! The AWS-backed fields against a real API server with the real CRDs:
//! External Secrets Operator v0.16.2's (from its Go module: `make crds`) and
//! a TargetGroupBinding CRD written from the AWS Load Balancer Controller's
//! API reference (tests/crds/targetgroupbinding.yaml says why), plus the EFS
//! CSI driver's CSIDriver object. Installed ecskube (shipped RBAC and
//! admission policies) turns one CloudFormation sample into an
//! ExternalSecret, a TargetGroupBinding, a bound EFS PersistentVolume and
//! claim and a HorizontalPodAutoscaler; without the CRDs it deploys as
//! before, and picks them up once installed, without a restart.
//! Needs `make control-plane crds`.

mod support;

use ecskube::devcluster::ecskube::Installation;
use ecskube::devcluster::DevCluster;
use ecskube::document::parse_documents;
use ecskube::ecs::intrinsics::Stack;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use support::{shared_cluster, test_namespace, wait_for, DumpLogsOnPanic};

const TIMEOUT: Duration = Duration::from_secs(120);
/// The tests install and remove cluster-wide CRDs: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn eso_crds() -> PathBuf {
    let dir = std::env::var_os("ECSKUBE_CRDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/ecskube/crds"))
        .join("external-secrets-v0.16.2");
    assert!(
        dir.join("external-secrets.io_externalsecrets.yaml").is_file(),
        "External Secrets CRDs not found in {}: run `make crds`",
        dir.display()
    );
    dir
}

const CSI_DRIVER: &str =
    "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: efs.csi.aws.com\nspec:\n  attachRequired: false\n";

fn install_integrations(cluster: &DevCluster) {
    for f in ["externalsecrets", "secretstores", "clustersecretstores"] {
        let path = eso_crds().join(format!("external-secrets.io_{f}.yaml"));
        cluster
            .kubectl_ok(&["apply", "--server-side", "-f", &path.to_string_lossy()], None)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    let tgb = root().join("tests/crds/targetgroupbinding.yaml");
    cluster
        .kubectl_ok(&["apply", "--server-side", "-f", &tgb.to_string_lossy()], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
    cluster.apply(CSI_DRIVER).unwrap_or_else(|e| panic!("{e:#}"));
    for crd in ["externalsecrets.external-secrets.io", "targetgroupbindings.elbv2.k8s.aws"] {
        cluster
            .kubectl_ok(
                &["wait", "--for=condition=Established", "--timeout=60s", &format!("crd/{crd}")],
                None,
            )
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}

fn remove_integrations(cluster: &DevCluster) {
    for crd in [
        "externalsecrets.external-secrets.io",
        "secretstores.external-secrets.io",
        "clustersecretstores.external-secrets.io",
        "targetgroupbindings.elbv2.k8s.aws",
    ] {
        cluster
            .kubectl_ok(&["delete", "crd", crd, "--ignore-not-found", "--wait=true"], None)
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    cluster
        .kubectl_ok(&["delete", "csidriver", "efs.csi.aws.com", "--ignore-not-found"], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
}

fn get_json(cluster: &DevCluster, args: &[&str]) -> Option<Value> {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let out = cluster.kubectl_run(&full, None).ok()?;
    out.success().then(|| serde_json::from_str(&out.stdout).ok()).flatten()
}

fn sample(ns: &str) -> String {
    let text = std::fs::read_to_string(root().join("samples/aws-integrations.yaml")).expect("sample");
    text.replace("namespace: default", &format!("namespace: {ns}"))
}

/// The ECS secrets the sample maps, as ESO must read them.
fn assert_external_secret(es: &Value) {
    let spec = &es["spec"];
    assert_eq!(spec["target"]["name"], "orders-secrets", "{es:#}");
    assert_eq!(spec["target"]["creationPolicy"], "Owner");
    assert_eq!(spec["secretStoreRef"]["name"], "aws-sm");
    assert_eq!(spec["secretStoreRef"]["kind"], "ClusterSecretStore");
    let data = spec["data"].as_array().expect("data");
    let item = |key: &str| {
        data.iter()
            .find(|d| d["secretKey"] == key)
            .unwrap_or_else(|| panic!("no data item {key}: {es:#}"))
    };
    let db = item("DB_PASSWORD");
    assert_eq!(
        db["remoteRef"]["key"],
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:orders/db-AbCdEf"
    );
    assert_eq!(db["remoteRef"]["property"], "password");
    assert!(db.get("sourceRef").is_none(), "the main store serves Secrets Manager");
    let token = item("API_TOKEN");
    assert_eq!(
        token["remoteRef"]["key"],
        "arn:aws:ssm:us-east-1:111122223333:parameter/orders/api-token"
    );
    assert_eq!(token["sourceRef"]["storeRef"]["name"], "aws-ps");
    let flags = item("FEATURE_FLAGS");
    assert_eq!(flags["remoteRef"]["key"], "/orders/feature-flags");
    assert_eq!(flags["sourceRef"]["storeRef"]["name"], "aws-ps");
}

/// The Secret the pods read each variable from.
fn env_secret(deployment: &Value, var: &str) -> Option<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == var)?["valueFrom"]["secretKeyRef"]["name"]
        .as_str()
        .map(str::to_string)
}

fn claim_of(deployment: &Value) -> Option<String> {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()?
        .iter()
        .find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .map(str::to_string)
}

fn install(cluster: &'static DevCluster) -> Installation {
    let args: Vec<String> = [
        "--secret-store-secrets-manager=aws-sm",
        "--secret-store-parameter-store=ClusterSecretStore/aws-ps",
        "--discovery-seconds=1",
    ]
    .map(String::from)
    .to_vec();
    let binary = Path::new(env!("CARGO_BIN_EXE_ecskube"));
    Installation::install_with(cluster, binary, &root().join("webhook-config"), &[], &args).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn without_the_crds_it_deploys_as_before_then_maps_every_field_once_they_are_installed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    remove_integrations(cluster);
    let installed = install(cluster);
    let ns = test_namespace(cluster, "integrations");

    // 1. No CRDs, no CSI driver: today's objects, and a warning for each field.
    let out = cluster.kubectl_run(&["apply", "-f", "-"], Some(&sample(&ns))).expect("kubectl");
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    for warned in [
        "create it with the values of the SSM / Secrets Manager ARNs",
        "becomes the PersistentVolumeClaim \"uploads\"",
    ] {
        assert!(out.stderr.contains(warned), "no warning {warned:?}:\n{}", out.stderr);
    }
    let mut deployment = Value::Null;
    wait_for("the Deployment", TIMEOUT, || {
        deployment = get_json(cluster, &["deployment", "orders", "-n", &ns]).unwrap_or(Value::Null);
        !deployment.is_null()
    });
    assert_eq!(env_secret(&deployment, "DB_PASSWORD").as_deref(), Some("orders-secrets"));
    assert_eq!(claim_of(&deployment).as_deref(), Some("uploads"), "the user's own claim, as before");
    let service = get_json(cluster, &["service", "orders", "-n", &ns]).expect("service");
    assert_eq!(
        service["spec"]["type"], "LoadBalancer",
        "without TargetGroupBinding: a LoadBalancer, as before"
    );
    // The HPA needs no CRD: it is there from the start.
    wait_for("the HorizontalPodAutoscaler", TIMEOUT, || {
        get_json(cluster, &["hpa", "orders", "-n", &ns]).is_some()
    });

    // 2. The projects arrive: discovery finds them, no restart.
    install_integrations(cluster);
    let installed_at = std::time::Instant::now();
    let pid = installed.controller.pid();
    let mut es = Value::Null;
    wait_for("the ExternalSecret", TIMEOUT, || {
        es = get_json(cluster, &["externalsecret", "orders-secrets", "-n", &ns]).unwrap_or(Value::Null);
        !es.is_null()
    });
    eprintln!("ExternalSecret made {:.1?} after the CRDs were installed", installed_at.elapsed());
    assert_external_secret(&es);
    assert_eq!(es["metadata"]["ownerReferences"][0]["kind"], "ECSDeployment");
    let mut tgb = Value::Null;
    wait_for("the TargetGroupBinding", TIMEOUT, || {
        tgb = get_json(cluster, &["targetgroupbinding", "orders-orders-80", "-n", &ns]).unwrap_or(Value::Null);
        !tgb.is_null()
    });
    assert_eq!(
        tgb["spec"]["targetGroupARN"],
        "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/orders/0123456789abcdef"
    );
    assert_eq!(tgb["spec"]["targetType"], "ip", "awsvpc tasks register pod IPs");
    assert_eq!(tgb["spec"]["serviceRef"]["name"], "orders");
    assert_eq!(tgb["spec"]["serviceRef"]["port"], 80);
    wait_for("the Service to become ClusterIP", TIMEOUT, || {
        get_json(cluster, &["service", "orders", "-n", &ns]).is_some_and(|s| s["spec"]["type"] == "ClusterIP")
    });
    let mut pv_name = String::new();
    wait_for("the EFS claim to be Bound to its volume", TIMEOUT, || {
        let claim = get_json(cluster, &["pvc", "orders-uploads", "-n", &ns]).unwrap_or(Value::Null);
        pv_name = claim["spec"]["volumeName"].as_str().unwrap_or_default().to_string();
        claim["status"]["phase"] == "Bound"
    });
    assert!(pv_name.starts_with(&format!("ecskube-{ns}-orders-uploads-")), "{pv_name}");
    cluster
        .kubectl_ok(
            &["wait", "--for=condition=Ready", "--timeout=120s", "ecsdeployment/orders", "-n", &ns],
            None,
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
    let pv = get_json(cluster, &["pv", &pv_name]).expect("the volume");
    assert_eq!(pv["spec"]["csi"]["driver"], "efs.csi.aws.com");
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], "fs-0123456789abcdef0::fsap-0123456789abcdef0");
    let options: Vec<&str> = pv["spec"]["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(options, ["tls", "iam"]);
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["claimRef"]["name"], "orders-uploads");
    wait_for("the pods to mount the EFS claim", TIMEOUT, || {
        get_json(cluster, &["deployment", "orders", "-n", &ns]).is_some_and(|d| claim_of(&d).as_deref() == Some("orders-uploads"))
    });
    let hpa = get_json(cluster, &["hpa", "orders", "-n", &ns]).expect("hpa");
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 8);
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
    assert_eq!(installed.controller.pid(), pid, "picked up without a restart");

    // 3. The HPA owns the count. A change rolled out before the HPA ever
    //    wrote it keeps desiredCount (dropping a field ecskube applied would
    //    reset it to 1): the count is handed over, not dropped.
    let image = |tag: &str| {
        let changed = sample(&ns).replace("ImageTag: \"1.27\"", &format!("ImageTag: \"{tag}\""));
        cluster
            .kubectl_ok(&["apply", "-f", "-"], Some(&changed))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let want = format!("public.ecr.aws/nginx/nginx:{tag}");
        let mut d = Value::Null;
        wait_for(&format!("image {tag} in the Deployment"), TIMEOUT, || {
            d = get_json(cluster, &["deployment", "orders", "-n", &ns, "--show-managed-fields"]).unwrap_or(Value::Null);
            d["spec"]["template"]["spec"]["containers"][0]["image"] == want.as_str()
        });
        d
    };
    let replica_managers = |d: &Value| -> Vec<String> {
        d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["fieldsV1"]["f:spec"].get("f:replicas").is_some())
            .filter_map(|m| m["manager"].as_str().map(String::from))
            .collect()
    };
    let d = image("1.28");
    assert_eq!(d["spec"]["replicas"], 2, "the count survived ecskube letting go of it");
    let managers = replica_managers(&d);
    assert!(
        !managers.iter().any(|m| m == "ecskube"),
        "ecskube still applies replicas: {managers:?}"
    );
    assert!(managers.iter().any(|m| m == "ecskube-replicas-handover"), "{managers:?}");
    // A scale (what the HPA controller writes) survives the next change.
    cluster
        .kubectl_ok(&["scale", "deployment", "orders", "-n", &ns, "--replicas=5"], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let d = image("1.29");
    assert_eq!(d["spec"]["replicas"], 5, "ecskube must not reset a count the HPA owns");

    // 4. Repairs, by watch (the resync is 5 minutes away): a deleted
    //    ExternalSecret and TargetGroupBinding come back.
    for o in ["externalsecret/orders-secrets", "targetgroupbinding/orders-orders-80"] {
        let uid = get_json(cluster, &[o, "-n", &ns]).expect("exists")["metadata"]["uid"].clone();
        cluster
            .kubectl_ok(&["delete", o, "-n", &ns], None)
            .unwrap_or_else(|e| panic!("{e:#}"));
        wait_for(&format!("{o} recreated"), TIMEOUT, || {
            get_json(cluster, &[o, "-n", &ns]).is_some_and(|v| v["metadata"]["uid"] != uid)
        });
    }

    // 5. Deleting the ECSDeployment removes everything, the cluster-scoped volume too.
    cluster
        .kubectl_ok(&["delete", "ecsdeployment", "orders", "-n", &ns, "--wait=true"], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let deleted_at = std::time::Instant::now();
    wait_for("the volume to be deleted", TIMEOUT, || {
        get_json(cluster, &["pv", &pv_name]).is_none()
    });
    eprintln!("EFS volume deleted {:.1?} after its ECSDeployment", deleted_at.elapsed());
    wait_for("garbage collection of the children", TIMEOUT, || {
        [
            "externalsecret/orders-secrets",
            "targetgroupbinding/orders-orders-80",
            "pvc/orders-uploads",
            "hpa/orders",
        ]
        .iter()
        .all(|o| get_json(cluster, &[o, "-n", &ns]).is_none())
    });
}

#[test]
fn without_an_autoscaler_a_scale_is_drift_and_is_repaired() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    let _installed = install(cluster);
    let ns = test_namespace(cluster, "no-hpa");
    let mut doc: Value = serde_yaml_ng::from_str(&sample(&ns)).expect("yaml");
    doc["spec"].as_object_mut().unwrap().remove("Scaling");
    cluster
        .kubectl_ok(&["apply", "-f", "-"], Some(&doc.to_string()))
        .unwrap_or_else(|e| panic!("{e:#}"));
    wait_for("the Deployment", TIMEOUT, || {
        get_json(cluster, &["deployment", "orders", "-n", &ns]).is_some()
    });
    cluster
        .kubectl_ok(&["scale", "deployment", "orders", "-n", &ns, "--replicas=5"], None)
        .unwrap_or_else(|e| panic!("{e:#}"));
    wait_for("desiredCount (2) restored", TIMEOUT, || {
        get_json(cluster, &["deployment", "orders", "-n", &ns]).is_some_and(|d| d["spec"]["replicas"] == 2)
    });
    assert!(get_json(cluster, &["hpa", "orders", "-n", &ns]).is_none());
}

/// Every corpus file that uses a mapped field, converted for a cluster with
/// everything, gives objects the API server accepts (server-side dry run,
/// against the real CRDs' schemas).
#[test]
fn every_object_made_for_the_corpus_is_accepted_by_the_api_server() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = shared_cluster();
    let _logs = DumpLogsOnPanic(cluster);
    install_integrations(cluster);
    let ns = test_namespace(cluster, "corpus-dry-run");
    let corpus = root().join("../shared/ecs-corpus");
    let mut files: Vec<PathBuf> = ["taskdefs", "services", "cfn"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(corpus.join(d))
                .expect("corpus folder")
                .flatten()
                .map(|e| e.path())
        })
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.push(root().join("samples/aws-integrations.yaml"));
    files.push(root().join("samples/autoscaling-cloudformation.yaml"));
    files.sort();
    let options = ecskube::cli::TargetClusterArgs::default().options();
    let (mut checked, mut kinds) = (0, std::collections::BTreeMap::<String, usize>::new());
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let uses = [
            "alueFrom",
            "redentialsParameter",
            "argetGroupArn",
            "ilesystemId",
            "ileSystemId",
            "Scaling",
        ];
        if !uses.iter().any(|u| text.contains(u)) {
            continue;
        }
        let mut docs = parse_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let params = root()
            .join("tests/cfn-params")
            .join(format!("{}.yaml", path.file_stem().unwrap().to_string_lossy()));
        for doc in &mut docs {
            if params.is_file() {
                let value: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
                let mut report = ecskube::Report::default();
                doc.params = Stack::from_file_value(&value, ecskube::path::Path::root(), &mut report);
            }
            let analysis = doc.analyze();
            if analysis.report.has_errors() || analysis.task.is_none() {
                continue; // tests/corpus.rs accounts for every file with errors; a lone service makes nothing
            }
            let mut meta = doc.meta(&analysis);
            meta.namespace = Some(ns.clone());
            let converted = ecskube::translate::convert_with(&analysis, &meta, &options).expect("converts");
            for object in &converted.objects {
                let mut json = serde_json::to_value(object).unwrap();
                if object.kind() != "PersistentVolume" {
                    json["metadata"]["namespace"] = ns.clone().into();
                }
                let out = cluster
                    .kubectl_run(
                        &["apply", "--server-side", "--dry-run=server", "--field-manager=ecskube", "-f", "-"],
                        Some(&json.to_string()),
                    )
                    .unwrap();
                assert!(
                    out.success(),
                    "{}: the API server refuses the {} {}: {}\n{json:#}",
                    path.display(),
                    object.kind(),
                    object.metadata().name.clone().unwrap_or_default(),
                    out.stderr
                );
                *kinds.entry(object.kind().to_string()).or_default() += 1;
            }
            checked += 1;
        }
    }
    eprintln!("dry-run accepted: {checked} definitions, objects by kind: {kinds:?}");
    for kind in [
        "ExternalSecret",
        "TargetGroupBinding",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "HorizontalPodAutoscaler",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} was made from the corpus: {kinds:?}"
        );
    }
}
