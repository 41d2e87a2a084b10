//! The token list's orders on the page: the sort links above the list (plain links with a
//! `sort` query parameter, so they work without JavaScript; the current one marked with
//! `aria-current`) and the list's URLs, which keep the order across pages.

use crate::app::tokens::PatSort;
use maud::{html, Markup};

/// The link text of an order.
fn label(sort: PatSort) -> &'static str {
    match sort {
        PatSort::Newest => "Newest",
        PatSort::LastUsed => "Recently used",
        PatSort::LeastRecentlyUsed => "Least recently used",
    }
}

/// The list's URL in order `sort`, at page `cursor` (`None`: the first page).
pub fn list_url(sort: PatSort, cursor: Option<&str>) -> String {
    let mut url = String::from("/tokens");
    let mut sep = '?';
    if sort != PatSort::Newest {
        url.push(sep);
        url.push_str("sort=");
        url.push_str(sort.as_str());
        sep = '&';
    }
    if let Some(c) = cursor {
        url.push(sep);
        url.push_str("cursor=");
        url.push_str(c);
    }
    url
}

/// The sort links: each order's first page; the current one marked.
pub fn nav(current: PatSort) -> Markup {
    html! {
        nav.sort aria-label="Sort tokens" {
            span.muted { "Sort by" }
            ul {
                @for s in PatSort::ALL {
                    li {
                        @if s == current {
                            a href=(list_url(s, None)) aria-current="true" { (label(s)) }
                        } @else {
                            a href=(list_url(s, None)) { (label(s)) }
                        }
                    }
                }
            }
        }
    }
}

/// The "Last used" column header's `aria-sort` when the list is sorted by it.
pub fn last_used_aria_sort(sort: PatSort) -> Option<&'static str> {
    match sort {
        PatSort::Newest => None,
        PatSort::LastUsed => Some("descending"),
        PatSort::LeastRecentlyUsed => Some("ascending"),
    }
}

/// The pager's "first page" link text in order `sort`.
pub fn first_page_label(sort: PatSort) -> &'static str {
    match sort {
        PatSort::Newest => "Newest tokens",
        PatSort::LastUsed => "Most recently used",
        PatSort::LeastRecentlyUsed => "Least recently used",
    }
}

/// The pager's "next page" link text in order `sort`.
pub fn next_page_label(sort: PatSort) -> &'static str {
    match sort {
        PatSort::Newest => "Older tokens",
        PatSort::LastUsed | PatSort::LeastRecentlyUsed => "Next tokens",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_order_and_the_default_stays_short() {
        assert_eq!(list_url(PatSort::Newest, None), "/tokens");
        assert_eq!(list_url(PatSort::Newest, Some("abc")), "/tokens?cursor=abc");
        assert_eq!(list_url(PatSort::LastUsed, None), "/tokens?sort=last_used");
        assert_eq!(
            list_url(PatSort::LeastRecentlyUsed, Some("abc")),
            "/tokens?sort=least_recently_used&cursor=abc"
        );
    }

    #[test]
    fn the_current_order_alone_is_marked() {
        let html = nav(PatSort::LastUsed).into_string();
        assert_eq!(html.matches("aria-current").count(), 1);
        assert!(
            html.contains(
                r#"<a href="/tokens?sort=last_used" aria-current="true">Recently used</a>"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"<a href="/tokens">Newest</a>"#), "{html}");
    }
}
