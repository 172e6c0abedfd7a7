//! JSON paths as users read them (`spec.Task.ContainerDefinitions[1].Memory`)
//! and as JSON Pointers (`/spec/Task/ContainerDefinitions/1/Memory`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    pub fn parse_dotted(s: &str) -> Self {
        Path(s.split('.').filter(|k| !k.is_empty()).map(|k| Seg::Key(k.to_string())).collect())
    }

    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn push_key(&mut self, k: &str) {
        self.0.push(Seg::Key(k.to_string()));
    }

    pub fn push_index(&mut self, i: usize) {
        self.0.push(Seg::Index(i));
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn join(&self, other: &Path) -> Path {
        let mut p = self.clone();
        p.0.extend(other.0.iter().cloned());
        p
    }

    /// RFC 6901 JSON Pointer.
    pub fn pointer(&self) -> String {
        let mut s = String::new();
        for seg in &self.0 {
            s.push('/');
            match seg {
                Seg::Key(k) => s.push_str(&k.replace('~', "~0").replace('/', "~1")),
                Seg::Index(i) => s.push_str(&i.to_string()),
            }
        }
        s
    }
}

fn plain_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{}]", serde_json::Value::String(k.clone()))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl From<&str> for Seg {
    fn from(k: &str) -> Self {
        Seg::Key(k.to_string())
    }
}

impl From<&String> for Seg {
    fn from(k: &String) -> Self {
        Seg::Key(k.clone())
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_user_paths_and_pointers() {
        let p = Path::parse_dotted("spec.Task").key("ContainerDefinitions").index(1).key("Memory");
        assert_eq!(p.to_string(), "spec.Task.ContainerDefinitions[1].Memory");
        assert_eq!(p.pointer(), "/spec/Task/ContainerDefinitions/1/Memory");
        let odd = Path::root().key("dockerLabels").key("a.b/c");
        assert_eq!(odd.to_string(), "dockerLabels[\"a.b/c\"]");
        assert_eq!(odd.pointer(), "/dockerLabels/a.b~1c");
    }
}
