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
    },

    /// Print the ECSDeployment CustomResourceDefinition (YAML).
    Crd,
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
        Command::Validate { files, output } => validate(&files, output),
        Command::Convert { file, output } => convert(&file, output),
        Command::Crd => {
            print!("{}", crate::crd::crd_yaml());
            EXIT_OK
        }
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

fn validate(files: &[String], format: Format) -> i32 {
    let (loaded, unreadable) = load(files);
    let mut results = Vec::new();
    for (file, docs) in &loaded {
        for (i, doc) in docs.iter().enumerate() {
            let analysis = doc.analyze();
            let diags = analysis.report.diagnostics;
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

fn convert(file: &str, format: ObjectFormat) -> i32 {
    let (loaded, unreadable) = load(std::slice::from_ref(&file.to_string()));
    if unreadable {
        return EXIT_UNREADABLE;
    }
    let mut objects = Vec::new();
    let mut failed = false;
    for (shown, docs) in &loaded {
        for doc in docs {
            let analysis = doc.analyze();
            match crate::translate::convert(&analysis, &doc.meta(&analysis)) {
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
