//! One small document tree for the structured sources (WinSW XML and YAML, Servy XML and
//! JSON, pm2 files), each node with its line, so a converter reads them all the same way and
//! every error names a line.

use crate::error::{At, ImportError, line_at};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) line: usize,
    pub(crate) v: V,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Null,
    Bool(bool),
    /// A number as written (so `0x10`, `1e3` and `1600` keep their spelling for messages).
    Num(f64, String),
    Str(String),
    List(Vec<Node>),
    /// Entries in document order; a key may repeat (XML elements do).
    Map(Vec<(String, Node)>),
}

impl Node {
    pub(crate) fn new(line: usize, v: V) -> Self {
        Self { line, v }
    }

    /// The entries of a map (empty for anything else).
    pub(crate) fn entries(&self) -> &[(String, Node)] {
        match &self.v {
            V::Map(m) => m,
            _ => &[],
        }
    }

    /// The last entry named `key`, ignoring case and `_`/`-` (WinSW and Servy spell keys in
    /// several cases; YAML's `workingDirectory` is XML's `workingdirectory`).
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entries()
            .iter()
            .rev()
            .find(|(k, _)| same_key(k, key))
            .map(|(_, n)| n)
    }

    /// Every entry named `key`, a list's items flattened: XML's repeated `<env>` elements and
    /// YAML's `env:` list read alike.
    pub(crate) fn all(&self, key: &str) -> Vec<&Node> {
        let mut out = Vec::new();
        for (k, n) in self.entries() {
            if same_key(k, key) {
                match &n.v {
                    V::List(items) => out.extend(items),
                    _ => out.push(n),
                }
            }
        }
        out
    }

    /// A scalar as text (numbers as written, booleans as `true`/`false`).
    pub(crate) fn text(&self) -> Option<String> {
        match &self.v {
            V::Str(s) => Some(s.clone()),
            V::Num(_, s) => Some(s.clone()),
            V::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub(crate) fn str_of(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Node::text)
    }

    /// A boolean: true/false, yes/no, 1/0, and an empty XML element (`<interactive/>`) as true.
    pub(crate) fn bool_of(&self, key: &str) -> Option<bool> {
        let n = self.get(key)?;
        match &n.v {
            V::Bool(b) => Some(*b),
            V::Num(f, _) => Some(*f != 0.0),
            V::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "" | "true" | "yes" | "on" | "1" => Some(true),
                "false" | "no" | "off" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn num(&self) -> Option<f64> {
        match &self.v {
            V::Num(f, _) => Some(*f),
            V::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self.v {
            V::Null => "null",
            V::Bool(_) => "a boolean",
            V::Num(..) => "a number",
            V::Str(_) => "a string",
            V::List(_) => "a list",
            V::Map(_) => "an object",
        }
    }
}

pub(crate) fn same_key(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    norm(a) == norm(b)
}

/// XML into a tree: an element without attributes and children is its text; anything else
/// is a map of its attributes and child elements (repeated children stay repeated).
pub(crate) fn from_xml(text: &str, at: &At) -> Result<(String, Node), ImportError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    // (name, line, entries, text)
    let mut stack: Vec<Open> = Vec::new();
    let bad = |pos: u64, e: &dyn std::fmt::Display| {
        at.err(
            Some(line_at(text, pos as usize)),
            None,
            format!("not valid XML: {e}"),
        )
    };
    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| bad(pos, &e))?;
        match event {
            Event::Start(e) => stack.push(open(&e, text, pos, &bad)?),
            Event::Empty(e) => {
                stack.push(open(&e, text, pos, &bad)?);
                if stack.len() == 1 {
                    let (name, line, entries, txt) = stack.pop().unwrap_or_default();
                    return Ok((name, element(line, entries, txt)));
                }
                close(&mut stack);
            }
            Event::End(_) => {
                if stack.len() == 1 {
                    let (name, line, entries, txt) = stack.pop().unwrap_or_default();
                    return Ok((name, element(line, entries, txt)));
                }
                close(&mut stack);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.3.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.3.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let resolved = match r.resolve_char_ref().map_err(|e| bad(pos, &e))? {
                        Some(c) => c.to_string(),
                        None => match &*r.xml10_content() {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => {
                                return Err(bad(pos, &format!("unknown entity &{other};")));
                            }
                        },
                    };
                    top.3.push_str(&resolved);
                }
            }
            Event::Eof => {
                return Err(at.err(
                    Some(line_at(text, text.len())),
                    None,
                    "not valid XML: the file ends inside an element (or has no root element)",
                ));
            }
            _ => {}
        }
    }
}

type Open = (String, usize, Vec<(String, Node)>, String);

fn open(
    e: &quick_xml::events::BytesStart<'_>,
    text: &str,
    pos: u64,
    bad: &dyn Fn(u64, &dyn std::fmt::Display) -> ImportError,
) -> Result<Open, ImportError> {
    let local = e.local_name();
    let name: &str = local.as_ref();
    let name = name.to_owned();
    let line = line_at(text, pos as usize);
    let mut entries = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| bad(pos, &err))?;
        let raw_key: &str = a.key.as_ref();
        if raw_key.starts_with("xmlns") {
            continue;
        }
        let local = a.key.local_name();
        let key: &str = local.as_ref();
        let key = key.to_owned();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| bad(pos, &err))?
            .into_owned();
        entries.push((key, Node::new(line, V::Str(value))));
    }
    Ok((name, line, entries, String::new()))
}

fn close(stack: &mut Vec<Open>) {
    if let Some((name, line, entries, txt)) = stack.pop() {
        let node = element(line, entries, txt);
        if let Some(parent) = stack.last_mut() {
            parent.2.push((name, node));
        } else {
            stack.push((name, line, vec![], String::new()));
        }
    }
}

fn element(line: usize, entries: Vec<(String, Node)>, text: String) -> Node {
    if entries.is_empty() {
        Node::new(line, V::Str(text.trim().to_owned()))
    } else {
        let mut entries = entries;
        if !text.trim().is_empty() {
            entries.push(("#text".into(), Node::new(line, V::Str(text.trim().into()))));
        }
        Node::new(line, V::Map(entries))
    }
}

/// YAML into a tree (the first document).
pub(crate) fn from_yaml(text: &str, at: &At) -> Result<Node, ImportError> {
    use saphyr::{LoadableYamlNode, MarkedYaml};
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        at.err(
            Some(e.marker().line()),
            None,
            format!("not valid YAML: {}", e.info()),
        )
    })?;
    let Some(doc) = docs.into_iter().next() else {
        return Ok(Node::new(1, V::Map(Vec::new())));
    };
    Ok(yaml_node(&doc))
}

fn yaml_node(y: &saphyr::MarkedYaml<'_>) -> Node {
    use saphyr::{Scalar, YamlData};
    let line = y.span.start.line();
    let v = match &y.data {
        YamlData::Value(s) => match s {
            Scalar::Null => V::Null,
            Scalar::Boolean(b) => V::Bool(*b),
            Scalar::Integer(i) => V::Num(*i as f64, i.to_string()),
            Scalar::FloatingPoint(f) => V::Num(f.into_inner(), f.to_string()),
            Scalar::String(s) => V::Str(s.to_string()),
        },
        YamlData::Representation(s, _, _) => V::Str(s.to_string()),
        YamlData::Sequence(items) => V::List(items.iter().map(yaml_node).collect()),
        YamlData::Mapping(m) => V::Map(
            m.iter()
                .map(|(k, v)| {
                    let key = yaml_node(k).text().unwrap_or_default();
                    (key, yaml_node(v))
                })
                .collect(),
        ),
        YamlData::Tagged(_, inner) => return yaml_node(inner),
        _ => V::Null,
    };
    Node::new(line, v)
}
