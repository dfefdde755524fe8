//! Where each service goes on the page: left to right by dependency depth (a caller left of
//! what it calls), each connected group of services in its own band, the services alone in
//! a grid below. Done here rather than in the browser so the page needs no layout library
//! and a thousand services cost the browser only drawing; pure, so it is tested here.

use std::collections::{BTreeMap, BTreeSet};

use crate::graph::ObjectKey;

pub const NODE_WIDTH: i64 = 240;
pub const NODE_HEIGHT: i64 = 88;
const COLUMN_GAP: i64 = 90;
const ROW_GAP: i64 = 24;
const BAND_GAP: i64 = 56;
// Wide enough for an edge's bend outside the first and last column.
const MARGIN: i64 = COLUMN_GAP / 2 + 8;
/// Services with no edge, per row of the grid below the bands.
const GRID_COLUMNS: usize = 6;

/// A placed box, top-left corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub x: i64,
    pub y: i64,
}

/// The whole drawing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub width: i64,
    pub height: i64,
    pub places: BTreeMap<ObjectKey, Place>,
}

impl Layout {
    /// The points of an edge: out of the caller's right side, into the callee's left side.
    /// An edge to the next column goes straight; a longer one, or one back to the left (a
    /// cycle), runs along the gap above the callee's row, which no box crosses: rows are
    /// one grid across the columns of a band.
    pub fn route(&self, from: &ObjectKey, to: &ObjectKey) -> Option<Vec<[i64; 2]>> {
        let (a, b) = (self.places.get(from)?, self.places.get(to)?);
        let start = [a.x + NODE_WIDTH, a.y + NODE_HEIGHT / 2];
        let end = [b.x, b.y + NODE_HEIGHT / 2];
        let bend = COLUMN_GAP / 2;
        let next_column = b.x > a.x && b.x - a.x <= NODE_WIDTH + COLUMN_GAP;
        if next_column {
            return Some(vec![
                start,
                [start[0] + bend, start[1]],
                [end[0] - bend, end[1]],
                end,
            ]);
        }
        let lane = b.y - ROW_GAP / 2;
        Some(vec![
            start,
            [start[0] + bend, start[1]],
            [start[0] + bend, lane],
            [end[0] - bend, lane],
            [end[0] - bend, end[1]],
            end,
        ])
    }
}

/// Lays out `nodes` (every node, ghosts included) joined by `edges` (caller, callee).
/// Deterministic: the same graph gives the same picture, so the page does not jump.
pub fn layout(nodes: &BTreeSet<ObjectKey>, edges: &[(ObjectKey, ObjectKey)]) -> Layout {
    let index: BTreeMap<&ObjectKey, usize> =
        nodes.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let keys: Vec<&ObjectKey> = nodes.iter().collect();
    let n = keys.len();
    let mut callees = vec![Vec::new(); n];
    let mut callers = vec![Vec::new(); n];
    for (from, to) in edges {
        let (Some(&a), Some(&b)) = (index.get(from), index.get(to)) else {
            continue;
        };
        if a != b && !callees[a].contains(&b) {
            callees[a].push(b);
            callers[b].push(a);
        }
    }
    let column = columns(&callees);
    let groups = components(&callees, &callers);

    let mut places = BTreeMap::new();
    let mut width = 0;
    let mut top = MARGIN;
    let mut alone = Vec::new();
    for group in groups {
        if group.len() == 1 {
            alone.push(group[0]);
            continue;
        }
        let rows = order_rows(&group, &column, &callers, &callees);
        let mut tallest = 0;
        for (col, members) in rows.iter().enumerate() {
            for (row, &node) in members.iter().enumerate() {
                let x = MARGIN + col as i64 * (NODE_WIDTH + COLUMN_GAP);
                let y = top + row as i64 * (NODE_HEIGHT + ROW_GAP);
                places.insert(keys[node].clone(), Place { x, y });
                width = width.max(x + NODE_WIDTH + MARGIN);
            }
            tallest = tallest.max(members.len() as i64);
        }
        top += tallest * (NODE_HEIGHT + ROW_GAP) - ROW_GAP + BAND_GAP;
    }
    for (i, &node) in alone.iter().enumerate() {
        let x = MARGIN + (i % GRID_COLUMNS) as i64 * (NODE_WIDTH + COLUMN_GAP / 3);
        let y = top + (i / GRID_COLUMNS) as i64 * (NODE_HEIGHT + ROW_GAP);
        places.insert(keys[node].clone(), Place { x, y });
        width = width.max(x + NODE_WIDTH + MARGIN);
    }
    let height = places
        .values()
        .map(|p| p.y + NODE_HEIGHT + MARGIN)
        .max()
        .unwrap_or(0);
    Layout {
        width,
        height,
        places,
    }
}

/// Each node's column: the longest chain of callers above it, cycles broken where a
/// depth-first walk meets a node still on its path.
fn columns(callees: &[Vec<usize>]) -> Vec<usize> {
    let n = callees.len();
    // Depth-first from every node, in order, keeping the edges that are not back edges;
    // then the longest path over that acyclic rest, in topological order.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; n];
    let mut order = Vec::with_capacity(n);
    let mut forward: Vec<Vec<usize>> = vec![Vec::new(); n];
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&callee) = callees[node].get(*next) {
                *next += 1;
                match mark[callee] {
                    Mark::New => {
                        forward[node].push(callee);
                        mark[callee] = Mark::OnPath;
                        stack.push((callee, 0));
                    }
                    Mark::Done => forward[node].push(callee),
                    Mark::OnPath => {}
                }
            } else {
                mark[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    let mut column = vec![0; n];
    // Post-order reversed is a topological order of the forward edges.
    for &node in order.iter().rev() {
        for &callee in &forward[node] {
            column[callee] = column[callee].max(column[node] + 1);
        }
    }
    column
}

/// The connected groups (edges taken both ways), each sorted, in order of their first
/// node.
fn components(callees: &[Vec<usize>], callers: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = callees.len();
    let mut seen = vec![false; n];
    let mut groups = Vec::new();
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut group = vec![start];
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for &next in callees[node].iter().chain(&callers[node]) {
                if !seen[next] {
                    seen[next] = true;
                    group.push(next);
                    stack.push(next);
                }
            }
        }
        group.sort_unstable();
        groups.push(group);
    }
    groups
}

/// The group's nodes by column, each column ordered to keep edges short: by the mean row
/// of their callers, then once more by the mean row of their callees.
fn order_rows(
    group: &[usize],
    column: &[usize],
    callers: &[Vec<usize>],
    callees: &[Vec<usize>],
) -> Vec<Vec<usize>> {
    let first = group.iter().map(|&node| column[node]).min().unwrap_or(0);
    let last = group.iter().map(|&node| column[node]).max().unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); last - first + 1];
    for &node in group {
        rows[column[node] - first].push(node);
    }
    let mut row_of: BTreeMap<usize, f64> = BTreeMap::new();
    let remember = |rows: &[Vec<usize>], row_of: &mut BTreeMap<usize, f64>| {
        for members in rows {
            for (row, &node) in members.iter().enumerate() {
                row_of.insert(node, row as f64);
            }
        }
    };
    remember(&rows, &mut row_of);
    let sweep =
        |members: &mut Vec<usize>, neighbours: &[Vec<usize>], row_of: &BTreeMap<usize, f64>| {
            let mean = |node: usize| {
                let known: Vec<f64> = neighbours[node]
                    .iter()
                    .filter_map(|n| row_of.get(n).copied())
                    .collect();
                if known.is_empty() {
                    row_of.get(&node).copied().unwrap_or(0.0)
                } else {
                    known.iter().sum::<f64>() / known.len() as f64
                }
            };
            // A stable sort keeps name order among equals.
            members.sort_by(|&a, &b| mean(a).total_cmp(&mean(b)));
        };
    for col in 1..rows.len() {
        sweep(&mut rows[col], callers, &row_of);
        remember(&rows[col..=col], &mut row_of);
    }
    for col in (0..rows.len().saturating_sub(1)).rev() {
        sweep(&mut rows[col], callees, &row_of);
        remember(&rows[col..=col], &mut row_of);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("shop", name)
    }

    fn shop() -> (BTreeSet<ObjectKey>, Vec<(ObjectKey, ObjectKey)>) {
        let nodes = [
            "storefront",
            "orders",
            "users",
            "inventory",
            "payments",
            "audit",
        ]
        .into_iter()
        .map(key)
        .collect();
        let edges = [
            ("storefront", "orders"),
            ("storefront", "users"),
            ("storefront", "inventory"),
            ("orders", "users"),
            ("orders", "inventory"),
            ("orders", "payments"),
        ]
        .into_iter()
        .map(|(a, b)| (key(a), key(b)))
        .collect();
        (nodes, edges)
    }

    fn column_of(layout: &Layout, name: &str) -> i64 {
        (layout.places[&key(name)].x - MARGIN) / (NODE_WIDTH + COLUMN_GAP)
    }

    #[test]
    fn callers_stand_left_of_what_they_call() {
        let (nodes, edges) = shop();
        let layout = layout(&nodes, &edges);
        assert_eq!(column_of(&layout, "storefront"), 0);
        assert_eq!(column_of(&layout, "orders"), 1);
        // Longest path: users is called by storefront and by orders.
        for callee in ["users", "inventory", "payments"] {
            assert_eq!(column_of(&layout, callee), 2, "{callee}");
        }
        // audit calls nothing and nobody calls it: in the grid below the band.
        let band_bottom = layout
            .places
            .iter()
            .filter(|(k, _)| k.name != "audit")
            .map(|(_, p)| p.y + NODE_HEIGHT)
            .max()
            .unwrap();
        assert!(layout.places[&key("audit")].y > band_bottom);
        // No two boxes overlap.
        let places: Vec<_> = layout.places.values().collect();
        for (i, a) in places.iter().enumerate() {
            for b in &places[i + 1..] {
                let apart = (a.x - b.x).abs() >= NODE_WIDTH || (a.y - b.y).abs() >= NODE_HEIGHT;
                assert!(apart, "{a:?} overlaps {b:?}");
            }
        }
        assert!(layout.width >= 3 * NODE_WIDTH && layout.height > 0);
    }

    #[test]
    fn a_cycle_is_laid_out_all_the_same() {
        let nodes: BTreeSet<_> = ["a", "b", "c"].into_iter().map(key).collect();
        let edges: Vec<_> = [("a", "b"), ("b", "c"), ("c", "a"), ("a", "a")]
            .into_iter()
            .map(|(x, y)| (key(x), key(y)))
            .collect();
        let layout = layout(&nodes, &edges);
        assert_eq!(layout.places.len(), 3);
        let columns: BTreeSet<i64> = ["a", "b", "c"]
            .iter()
            .map(|n| column_of(&layout, n))
            .collect();
        assert_eq!(columns, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn an_edge_runs_from_the_callers_right_to_the_callees_left() {
        let (nodes, edges) = shop();
        let layout = layout(&nodes, &edges);
        let route = layout.route(&key("storefront"), &key("orders")).unwrap();
        let (start, end) = (route[0], route[route.len() - 1]);
        let (from, to) = (
            layout.places[&key("storefront")],
            layout.places[&key("orders")],
        );
        assert_eq!(start, [from.x + NODE_WIDTH, from.y + NODE_HEIGHT / 2]);
        assert_eq!(end, [to.x, to.y + NODE_HEIGHT / 2]);
        assert!(layout.route(&key("storefront"), &key("nowhere")).is_none());
    }

    #[test]
    fn a_long_edge_crosses_no_box() {
        // storefront → users spans two columns; orders stands between them.
        let (nodes, mut edges) = shop();
        edges.push((key("users"), key("storefront")));
        let layout = layout(&nodes, &edges);
        for (from, to) in [("storefront", "users"), ("users", "storefront")] {
            let route = layout.route(&key(from), &key(to)).unwrap();
            for pair in route.windows(2) {
                let ([x0, y0], [x1, y1]) = (pair[0], pair[1]);
                for (name, place) in &layout.places {
                    let inside_x = x0.max(x1) > place.x && x0.min(x1) < place.x + NODE_WIDTH;
                    let inside_y = y0.max(y1) > place.y && y0.min(y1) < place.y + NODE_HEIGHT;
                    assert!(
                        !(inside_x && inside_y),
                        "{from} → {to}: segment {:?} crosses {name}",
                        pair
                    );
                }
            }
        }
    }

    #[test]
    fn a_thousand_services_are_laid_out_without_overlap() {
        // 100 chains of 10: 100 bands of 10 columns.
        let mut nodes = BTreeSet::new();
        let mut edges = Vec::new();
        for chain in 0..100 {
            for link in 0..10 {
                let name = format!("s{chain:03}-{link}");
                nodes.insert(key(&name));
                if link > 0 {
                    edges.push((key(&format!("s{chain:03}-{}", link - 1)), key(&name)));
                }
            }
        }
        let layout = layout(&nodes, &edges);
        assert_eq!(layout.places.len(), 1000);
        let distinct: BTreeSet<(i64, i64)> = layout.places.values().map(|p| (p.x, p.y)).collect();
        assert_eq!(distinct.len(), 1000);
    }
}
