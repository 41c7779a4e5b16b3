//! Tool-name patterns: `*` matches any run of characters (possibly empty), `?` exactly one.

/// A compiled tool-name pattern.
///
/// Matching takes time proportional to the name's length times the pattern's, never
/// exponential, and allocates nothing.
///
/// ```
/// use mcp_policy::pattern::Glob;
/// let glob = Glob::new("github_*_issue?");
/// assert!(glob.matches("github_create_issue2"));
/// assert!(!glob.matches("github_create_issue"));
/// assert_eq!(glob.literal_count(), 13);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    literals: usize,
    /// The literal text before the one trailing `*`, when that is the only wildcard
    /// (`file:///srv/docs/*`): such a pattern matches by a prefix comparison.
    prefix: Option<Box<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    One,
    Any,
}

/// Whether a `tools` or `hide` key is a pattern (contains `*` or `?`).
pub fn is_pattern(key: &str) -> bool {
    key.contains(['*', '?'])
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Glob {
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut literals = 0;
        for c in pattern.chars() {
            match c {
                '*' => {
                    // Consecutive stars are one star.
                    if tokens.last() != Some(&Token::Any) {
                        tokens.push(Token::Any);
                    }
                }
                '?' => tokens.push(Token::One),
                c => {
                    literals += 1;
                    tokens.push(Token::Literal(c));
                }
            }
        }
        let mut glob = Glob {
            tokens,
            literals,
            prefix: None,
        };
        glob.prefix = glob.prefix_only().map(String::into_boxed_str);
        glob
    }

    /// The number of literal (non-wildcard) characters: the pattern's specificity.
    pub fn literal_count(&self) -> usize {
        self.literals
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        if let Some(prefix) = &self.prefix {
            return name.starts_with(&**prefix);
        }
        // Iterative matcher with one backtrack point (the last `*`): O(len(name) * len(pattern)).
        let mut t = 0usize; // token index
        let mut n = 0usize; // byte offset into name
        let mut star: Option<(usize, usize)> = None; // (token after star, name offset it consumed up to)
        loop {
            let next_char = name.get(n..).and_then(|rest| rest.chars().next());
            match (self.tokens.get(t), next_char) {
                (Some(Token::Any), _) => {
                    star = Some((t + 1, n));
                    t += 1;
                    continue;
                }
                (Some(Token::One), Some(c)) => {
                    t += 1;
                    n += c.len_utf8();
                    continue;
                }
                (Some(Token::Literal(l)), Some(c)) if *l == c => {
                    t += 1;
                    n += c.len_utf8();
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // Mismatch: let the last star swallow one more character, or fail.
            match star {
                Some((after, consumed)) => {
                    let Some(c) = name.get(consumed..).and_then(|rest| rest.chars().next()) else {
                        return false;
                    };
                    let consumed = consumed + c.len_utf8();
                    star = Some((after, consumed));
                    t = after;
                    n = consumed;
                }
                None => return false,
            }
        }
    }
}

impl Glob {
    /// Whether some name matches both patterns (a `*` or `?` on either side may stand for
    /// what the other writes). Used to judge a resource template against the policy's URI
    /// patterns. Past a million steps it answers `true` (the caller keeps what it cannot
    /// judge in a list; listing never grants a read).
    ///
    /// ```
    /// use mcp_policy::pattern::Glob;
    /// assert!(Glob::new("file:///srv/*").intersects(&Glob::new("file:///*/docs")));
    /// assert!(!Glob::new("file:///srv/*").intersects(&Glob::new("file:///etc/*")));
    /// assert!(Glob::new("a?c").intersects(&Glob::new("*c")));
    /// ```
    pub fn intersects(&self, other: &Glob) -> bool {
        let (a, b) = (&self.tokens, &other.tokens);
        let (n, m) = (a.len(), b.len());
        let width = m + 1;
        let Some(cells) = (n + 1).checked_mul(width).filter(|c| *c <= 1_000_000) else {
            return true;
        };
        // can[i * width + j]: the rest a[i..] and b[j..] match some common name.
        let mut can = vec![false; cells];
        let at = |i: usize, j: usize| i * width + j;
        for i in (0..=n).rev() {
            for j in (0..=m).rev() {
                let get = |can: &Vec<bool>, i: usize, j: usize| {
                    can.get(at(i, j)).copied().unwrap_or(false)
                };
                let value = match (a.get(i), b.get(j)) {
                    (None, None) => true,
                    (Some(Token::Any), _) => get(&can, i + 1, j) || (j < m && get(&can, i, j + 1)),
                    (_, Some(Token::Any)) => get(&can, i, j + 1) || (i < n && get(&can, i + 1, j)),
                    (Some(Token::Literal(x)), Some(Token::Literal(y))) => {
                        x == y && get(&can, i + 1, j + 1)
                    }
                    (Some(_), Some(_)) => get(&can, i + 1, j + 1),
                    _ => false,
                };
                if let Some(cell) = can.get_mut(at(i, j)) {
                    *cell = value;
                }
            }
        }
        can.first().copied().unwrap_or(false)
    }

    /// The literal text before a trailing `*` that is the pattern's only wildcard (the
    /// pattern is then "everything under this prefix"), kept since [`Glob::new`].
    pub(crate) fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// [`Glob::prefix`], computed from the tokens.
    fn prefix_only(&self) -> Option<String> {
        let (last, body) = self.tokens.split_last()?;
        if *last != Token::Any {
            return None;
        }
        body.iter()
            .map(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersections() {
        let g = |p: &str| Glob::new(p);
        assert!(g("*").intersects(&g("")));
        assert!(g("abc").intersects(&g("abc")));
        assert!(!g("abc").intersects(&g("abd")));
        assert!(g("a*").intersects(&g("*z")));
        assert!(!g("a*").intersects(&g("b*")));
        assert!(g("x://docs/*").intersects(&g("x://docs/*.md")));
        assert!(!g("??").intersects(&g("???")));
        assert!(g("a*b*c").intersects(&g("*bbb*")));
        assert_eq!(
            g("file:///srv/*").prefix_only().as_deref(),
            Some("file:///srv/")
        );
        assert_eq!(g("a*b").prefix(), None);
        assert_eq!(g("ab").prefix(), None);
    }

    #[test]
    fn star_and_question() {
        let g = Glob::new("*");
        assert!(g.matches(""));
        assert!(g.matches("anything"));
        let g = Glob::new("a*b");
        assert!(g.matches("ab"));
        assert!(g.matches("axxb"));
        assert!(g.matches("abab"));
        assert!(!g.matches("aba"));
        let g = Glob::new("?");
        assert!(g.matches("é"));
        assert!(!g.matches(""));
        assert!(!g.matches("ab"));
        let g = Glob::new("db_*_prod*");
        assert!(g.matches("db_delete_prod"));
        assert!(g.matches("db_x_production"));
        assert!(!g.matches("db_prod"));
    }

    #[test]
    fn literal_only_pattern_is_exact() {
        let g = Glob::new("abc");
        assert!(g.matches("abc"));
        assert!(!g.matches("abcd"));
        assert_eq!(g.literal_count(), 3);
    }

    #[test]
    fn pathological_input_is_fast() {
        let g = Glob::new("*a*a*a*a*a*a*a*b");
        let name = "a".repeat(20_000);
        assert!(!g.matches(&name));
    }

    #[test]
    fn pattern_detection() {
        assert!(is_pattern("a*"));
        assert!(is_pattern("a?"));
        assert!(!is_pattern("abc"));
    }
}
