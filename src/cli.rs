//! The offline command line: `ecskube validate` (more commands join later).

use crate::diag::Severity;
use crate::document::{parse_documents, EcsDocument};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::io::Read;

#[derive(Debug, Parser)]
#[command(name = "ecskube", version, about = "Run AWS ECS task and service definitions on Kubernetes")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check ECSDeployments or bare ECS task/service definitions, like a compiler.
    ///
    /// Exit status: 0 when no errors, 1 when any file has errors, 2 when a file cannot be read or parsed.
    Validate {
        /// JSON or YAML files (several YAML documents per file); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Text)]
        output: Format,
        #[command(flatten)]
        params: ParamArgs,
        #[command(flatten)]
        cluster: TargetClusterArgs,
    },

    /// Print the Kubernetes objects the controller would create (without ownerReferences).
    ///
    /// Warnings (what does not carry over) go to standard error. Exit status as for validate.
    Convert {
        /// One JSON or YAML file; `-` reads standard input.
        file: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = ObjectFormat::Yaml)]
        output: ObjectFormat,
        #[command(flatten)]
        params: ParamArgs,
        #[command(flatten)]
        cluster: TargetClusterArgs,
    },

    /// Print the ECSDeployment CustomResourceDefinition (YAML).
    Crd,
    /// Generate a CA and a serving certificate for the webhook (ECDSA P-256).
    ///
    /// Writes ca.crt, tls.crt and tls.key to --out and prints the base64 CA bundle
    /// for the caBundle of the webhook configurations.
    Certs {
        /// DNS names of the webhook, e.g. ecskube-webhook.ecskube-system.svc.
        #[arg(long = "dns-name", required_unless_present = "ips")]
        dns_names: Vec<String>,
        /// IP addresses of the webhook (e.g. 127.0.0.1 for a local API server).
        #[arg(long = "ip")]
        ips: Vec<std::net::IpAddr>,
        /// Folder for the files.
        #[arg(long, default_value = "certs")]
        out: std::path::PathBuf,
    },
    /// Run the admission webhook and the controller.
    Serve(Box<crate::serve::ServeArgs>),
}

/// Values for CloudFormation intrinsic functions (`Ref`, `Fn::Sub`, ...); they
/// override an ECSDeployment's own spec.Parameters.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParamArgs {
    /// A parameter value (JSON when it parses as JSON, e.g. 256 or ["a","b"]; else a string).
    /// Names are Ref names, Resource.Attribute for Fn::GetAtt, export names, AWS::Region, ...
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A YAML or JSON file with `Parameters:`, `Conditions:` and `Mappings:` sections (or a plain
    /// map of parameter values, or the AWS CLI's ParameterKey/ParameterValue list). --param wins.
    #[arg(long = "param-file", value_name = "FILE")]
    pub param_files: Vec<String>,
}

/// What the cluster the objects are for runs (`ecskube serve` finds out by
/// API discovery); by default everything ecskube maps to.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetClusterArgs {
    /// Projects the target cluster does not run (comma-separated): their
    /// objects are not made, and the fields stay warnings, as in such a cluster.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub without: Vec<Integration>,
    #[command(flatten)]
    pub stores: crate::integrations::StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Integration {
    /// External Secrets Operator (ExternalSecret).
    ExternalSecrets,
    /// AWS Load Balancer Controller (TargetGroupBinding).
    TargetGroupBinding,
    /// The EFS CSI driver (PersistentVolume with efs.csi.aws.com).
    EfsCsi,
}

/// The store names `convert` shows when none is given (`serve` has no default).
pub const DEFAULT_SECRETS_MANAGER_STORE: &str = "aws-secrets-manager";
pub const DEFAULT_PARAMETER_STORE_STORE: &str = "aws-parameter-store";

impl TargetClusterArgs {
    pub fn options(&self) -> crate::translate::Options {
        let has = |i: Integration| !self.without.contains(&i);
        let store = |given: &Option<crate::translate::StoreRef>, default: &str| {
            Some(given.clone().unwrap_or_else(|| crate::translate::StoreRef {
                name: default.into(),
                kind: "ClusterSecretStore".into(),
            }))
        };
        let stores = crate::translate::SecretStores {
            secrets_manager: store(&self.stores.secret_store_secrets_manager, DEFAULT_SECRETS_MANAGER_STORE),
            parameter_store: store(&self.stores.secret_store_parameter_store, DEFAULT_PARAMETER_STORE_STORE),
        };
        crate::translate::Options {
            integrations: crate::translate::Integrations {
                external_secrets: has(Integration::ExternalSecrets).then_some(stores),
                target_group_binding: has(Integration::TargetGroupBinding).then_some(crate::translate::TargetGroupBindings {
                    multi_cluster: self.stores.target_group_multi_cluster,
                }),
                efs_csi: has(Integration::EfsCsi),
            },
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ObjectFormat {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_UNREADABLE: i32 = 2;

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate {
            files,
            output,
            params,
            cluster,
        } => match params.stack() {
            Ok(stack) => validate(&files, output, &stack, &cluster.options()),
            Err(e) => usage_error("validate", &e),
        },
        Command::Convert {
            file,
            output,
            params,
            cluster,
        } => match params.stack() {
            Ok(stack) => convert(&file, output, &stack, &cluster.options()),
            Err(e) => usage_error("convert", &e),
        },
        Command::Certs { dns_names, ips, out } => match crate::certs::run_certs_command(&dns_names, &ips, &out) {
            Ok(bundle) => {
                println!("{bundle}");
                EXIT_OK
            }
            Err(e) => {
                eprintln!("ecskube certs: {e:#}");
                EXIT_INVALID
            }
        },
        Command::Serve(args) => serve(*args),
        Command::Crd => {
            print!("{}", crate::crd::crd_yaml());
            EXIT_OK
        }
    }
}

fn usage_error(command: &str, e: &str) -> i32 {
    eprintln!("ecskube {command}: {e}");
    EXIT_UNREADABLE
}

impl ParamArgs {
    /// The values given on the command line: files in order, then each --param.
    pub fn stack(&self) -> Result<crate::ecs::intrinsics::Stack, String> {
        use crate::ecs::intrinsics::Stack;
        use crate::path::Path;
        let mut stack = Stack {
            hint: "give values with --param NAME=VALUE or --param-file FILE".into(),
            ..Stack::default()
        };
        for file in &self.param_files {
            let text = read(file).map_err(|e| format!("{file}: {e}"))?;
            let value: serde_json::Value = serde_yaml_ng::from_str(&text).map_err(|e| format!("{file}: not valid YAML or JSON: {e}"))?;
            let mut report = crate::Report::default();
            let mut from_file = Stack::from_file_value(&value, Path::root(), &mut report);
            if let Some(d) = report.errors().next() {
                return Err(format!("{file}: {d}"));
            }
            from_file.sources = from_file.parameters.keys().map(|k| (k.clone(), format!("{file}: {k}"))).collect();
            stack.merge(&from_file);
        }
        let mut given = serde_json::Map::new();
        for p in &self.params {
            let Some((name, value)) = p.split_once('=').filter(|(n, _)| !n.is_empty()) else {
                return Err(format!("--param {p}: expected NAME=VALUE"));
            };
            let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
            given.insert(name.to_string(), value);
        }
        let mut report = crate::Report::default();
        let mut from_flags = Stack::from_sections(Some(&serde_json::Value::Object(given)), None, None, Path::root(), &mut report);
        if let Some(d) = report.errors().next() {
            return Err(format!("--param {d}"));
        }
        from_flags.sources = from_flags.parameters.keys().map(|k| (k.clone(), format!("--param {k}"))).collect();
        stack.merge(&from_flags);
        Ok(stack)
    }
}

#[derive(Serialize)]
struct FileResult {
    file: String,
    /// Index of the document in the file (YAML streams hold several).
    document: usize,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<crate::Diagnostic>,
}

fn read(file: &str) -> std::io::Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(file)
    }
}

/// Reads and parses every file; unreadable ones are reported on stderr.
fn load(files: &[String]) -> (Vec<(String, Vec<EcsDocument>)>, bool) {
    let mut loaded = Vec::new();
    let mut unreadable = false;
    for file in files {
        let shown = if file == "-" { "<stdin>".to_string() } else { file.clone() };
        match read(file)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_documents(&t).map_err(|e| e.to_string()))
        {
            Ok(docs) if docs.is_empty() => {
                eprintln!("{shown}: no ECS definitions found");
                unreadable = true;
            }
            Ok(docs) => loaded.push((shown, docs)),
            Err(e) => {
                eprintln!("{shown}: {e}");
                unreadable = true;
            }
        }
    }
    (loaded, unreadable)
}

fn validate(files: &[String], format: Format, params: &crate::ecs::intrinsics::Stack, options: &crate::translate::Options) -> i32 {
    let (mut loaded, unreadable) = load(files);
    with_params(&mut loaded, params);
    let mut results = Vec::new();
    for (file, docs) in &loaded {
        for (i, doc) in docs.iter().enumerate() {
            let analysis = doc.analyze();
            let mut diags = analysis.report.diagnostics.clone();
            // What would not carry over, as the webhook warns at apply time.
            if !analysis.report.has_errors() && analysis.task.is_some() {
                if let Ok(converted) = crate::translate::convert_with(&analysis, &doc.meta(&analysis), options) {
                    diags.extend(converted.report.diagnostics);
                }
            }
            results.push(FileResult {
                file: if docs.len() > 1 { format!("{file}#{i}") } else { file.clone() },
                document: i,
                errors: diags.iter().filter(|d| d.severity == Severity::Error).count(),
                warnings: diags.iter().filter(|d| d.severity == Severity::Warning).count(),
                diagnostics: diags,
            });
        }
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&results).unwrap_or_default()),
        Format::Text => {
            for r in &results {
                for d in &r.diagnostics {
                    println!("{}: {d}", r.file);
                }
            }
            let errors: usize = results.iter().map(|r| r.errors).sum();
            let warnings: usize = results.iter().map(|r| r.warnings).sum();
            let docs = results.len();
            let clean = results.iter().filter(|r| r.errors == 0).count();
            eprintln!("{clean} of {docs} definitions valid; {errors} errors, {warnings} warnings");
        }
    }
    if unreadable {
        EXIT_UNREADABLE
    } else if results.iter().any(|r| r.errors > 0) {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}

/// Command-line values override each document's own.
fn with_params(loaded: &mut [(String, Vec<EcsDocument>)], params: &crate::ecs::intrinsics::Stack) {
    for doc in loaded.iter_mut().flat_map(|(_, docs)| docs.iter_mut()) {
        doc.params = params.clone();
    }
}

fn convert(file: &str, format: ObjectFormat, params: &crate::ecs::intrinsics::Stack, options: &crate::translate::Options) -> i32 {
    let (mut loaded, unreadable) = load(std::slice::from_ref(&file.to_string()));
    with_params(&mut loaded, params);
    if unreadable {
        return EXIT_UNREADABLE;
    }
    let mut objects = Vec::new();
    let mut failed = false;
    for (shown, docs) in &loaded {
        for doc in docs {
            let analysis = doc.analyze();
            match crate::translate::convert_with(&analysis, &doc.meta(&analysis), options) {
                Ok(converted) => {
                    for d in analysis.report.warnings().chain(converted.report.warnings()) {
                        eprintln!("{shown}: {d}");
                    }
                    objects.extend(converted.objects);
                }
                Err(crate::translate::ConvertError::Invalid(report)) => {
                    failed = true;
                    for d in &report.diagnostics {
                        eprintln!("{shown}: {d}");
                    }
                }
                Err(e) => {
                    failed = true;
                    eprintln!("{shown}: {e}");
                }
            }
        }
    }
    if failed {
        return EXIT_INVALID;
    }
    match format {
        ObjectFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        }
        ObjectFormat::Yaml => {
            for (i, o) in objects.iter().enumerate() {
                if i > 0 {
                    println!("---");
                }
                print!("{}", serde_yaml_ng::to_string(o).unwrap_or_default());
            }
        }
    }
    EXIT_OK
}

fn serve(args: crate::serve::ServeArgs) -> i32 {
    crate::serve::init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ecskube serve: {e}");
            return EXIT_INVALID;
        }
    };
    // actix-web runs inside a LocalSet on this runtime.
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, crate::serve::run(args)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("ecskube serve: {e:#}");
            EXIT_INVALID
        }
    }
}
