//! `make schema`: regenerate src/ecs/schema/generated.rs from AWS's models.
//! Usage: cargo run --example gen_schema -- [MODELS_DIR] > src/ecs/schema/generated.rs

#[path = "../tools/schemagen.rs"]
mod schemagen;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ECSKUBE_AWS_MODELS").ok())
        .unwrap_or_else(|| "../shared/aws-models".into());
    match schemagen::generate(std::path::Path::new(&dir)) {
        Ok(src) => print!("{src}"),
        Err(e) => {
            eprintln!("gen_schema: {e}");
            std::process::exit(1);
        }
    }
}
