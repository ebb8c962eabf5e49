//! The dominator tree of the heap graph and the retained size of every node.
//!
//! Node `d` dominates node `n` when every path from the root to `n` passes through `d`: if `d` went
//! away, `n` would be collected with it. The retained size of `d` is the shallow size of everything it
//! dominates, itself included.
//!
//! The graph holds only edges that retain their target (which ones depends on the convention: see
//! `devtools::retaining_edges`). Nodes that then cannot be reached from the root are attached to it:
//! first every such node that no retaining edge holds (it is held only weakly), each with everything
//! it reaches, in index order; then the nodes still left over (cycles that nothing outside holds).
//! Chrome DevTools attaches each of those to the root on its own, and its algorithm then gives their
//! edges no say in anyone's dominator ([`Unreached::OneByOne`]); the `v8` convention walks from the
//! first of them, so that it dominates the rest of its cycle ([`Unreached::Walk`]).
//!
//! The algorithm is Semi-NCA (Georgiadis, *Linear-Time Algorithms for Dominators and Related
//! Problems*, 2005; also what LLVM uses): one depth-first search numbers the nodes in preorder,
//! semi-dominators come from Lengauer–Tarjan's `eval` with path compression, and each immediate
//! dominator is the nearest common ancestor of the parent and the semi-dominator in the tree built so
//! far. Everything is iterative (heap graphs are deep) and indexed by `u32`.

use super::graph::RetainingEdges;

const NONE: u32 = u32::MAX;

/// How nodes are attached to the root when neither the root nor a weakly held node reaches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreached {
    /// Depth-first from each in index order, like any other node.
    Walk,
    /// Each hangs off the root alone, and its edges are ignored (Chrome DevTools).
    OneByOne,
}

/// The dominator tree, in the depth-first preorder of the search that built it.
#[derive(Debug)]
pub(crate) struct DominatorTree {
    /// Preorder number → node ordinal. `order[0]` is the root.
    pub order: Vec<u32>,
    /// Preorder number → preorder number of the immediate dominator (the root's is itself, 0).
    /// Always smaller than the node's own number, except for the root.
    pub idom: Vec<u32>,
    /// Children as linked lists threaded through two arrays, in increasing preorder number:
    /// `first_child[w]`, then `next_sibling` of that, and so on (`NONE` ends a list).
    first_child: Vec<u32>,
    next_sibling: Vec<u32>,
}

impl DominatorTree {
    /// Retained sizes, by preorder number, from each node's shallow size.
    pub fn retained_sizes(&self, self_size: impl Fn(u32) -> u64) -> Vec<u64> {
        let mut retained: Vec<u64> = self.order.iter().map(|&node| self_size(node)).collect();
        for w in (1..self.order.len()).rev() {
            let d = self.idom[w] as usize;
            retained[d] += retained[w];
        }
        retained
    }

    /// Visits the tree depth-first from the root: `visit(w, true)` on the way down to node `w`
    /// (preorder number), `visit(w, false)` on the way back up, after all of its subtree.
    pub fn walk(&self, mut visit: impl FnMut(u32, bool)) {
        if self.order.is_empty() {
            return;
        }
        let mut w = 0u32;
        visit(0, true);
        loop {
            let child = self.first_child[w as usize];
            if child != NONE {
                w = child;
                visit(w, true);
                continue;
            }
            // w's subtree is done: leave it, and every ancestor whose last child it was.
            loop {
                visit(w, false);
                if w == 0 {
                    return;
                }
                let sibling = self.next_sibling[w as usize];
                if sibling != NONE {
                    w = sibling;
                    visit(w, true);
                    break;
                }
                w = self.idom[w as usize];
            }
        }
    }
}

/// Builds the dominator tree of the graph that `edges` describe, from `root`. It takes the edges:
/// the search rewrites their targets in place, and their memory is reused once they are done with.
pub(crate) fn dominator_tree(
    edges: RetainingEdges,
    root: u32,
    unreached: Unreached,
) -> DominatorTree {
    let RetainingEdges {
        first_edge,
        mut targets,
    } = edges;
    let n = first_edge.len().saturating_sub(1);
    if n == 0 {
        return DominatorTree {
            order: Vec::new(),
            idom: Vec::new(),
            first_child: Vec::new(),
            next_sibling: Vec::new(),
        };
    }

    // 1. Depth-first search in preorder, from the root, then from the nodes it did not reach. Every
    //    node is entered once and every edge looked at once, so the search also rewrites each edge's
    //    target as its preorder number (the rest works in preorder numbers, where a node's
    //    neighbours tend to be close by; `NONE` marks the tree edges) and counts each node's other
    //    retainers, by preorder number.
    let mut dfnum = vec![NONE; n];
    let mut order: Vec<u32> = Vec::with_capacity(n);
    let mut parent: Vec<u32> = Vec::with_capacity(n);
    let mut retainers = vec![0u32; n + 1];
    // (preorder number, next edge to look at, end of its edges)
    let mut stack: Vec<(u32, u32, u32)> = Vec::new();
    let mut search = |start: u32,
                      dfnum: &mut [u32],
                      order: &mut Vec<u32>,
                      parent: &mut Vec<u32>,
                      targets: &mut [u32]| {
        let start_number = order.len() as u32;
        dfnum[start as usize] = start_number;
        order.push(start);
        parent.push(0);
        let edges_of = |v: u32| (first_edge[v as usize], first_edge[v as usize + 1]);
        let (first, end) = edges_of(start);
        stack.push((start_number, first, end));
        while let Some(top) = stack.last_mut() {
            let (v_number, mut next, end) = *top;
            // Through v's edges to the first target not entered yet, which is entered next.
            let mut entered = None;
            while next < end {
                let w = targets[next as usize];
                let w_number = dfnum[w as usize];
                if w_number == NONE {
                    // A tree edge: its source is the parent, which the semi-dominator pass starts
                    // from anyway, so it is not listed as a predecessor.
                    let w_number = order.len() as u32;
                    dfnum[w as usize] = w_number;
                    order.push(w);
                    parent.push(v_number);
                    entered = Some((w, w_number));
                    targets[next as usize] = NONE;
                } else {
                    targets[next as usize] = w_number;
                    retainers[w_number as usize] += 1;
                }
                next += 1;
                if entered.is_some() {
                    break;
                }
            }
            top.1 = next;
            match entered {
                Some((w, w_number)) => {
                    let (first, end) = edges_of(w);
                    stack.push((w_number, first, end));
                }
                None => {
                    stack.pop();
                }
            }
        }
    };
    search(root, &mut dfnum, &mut order, &mut parent, &mut targets);
    if order.len() < n {
        // The nodes left are held only weakly or not at all. Like DevTools, attach first those that
        // no edge retains (each with everything it reaches), then the rest in index order. Only
        // nodes not reached yet can retain them, and those nodes' edges are still unread.
        let mut retained = vec![false; n];
        for v in 0..n {
            if dfnum[v] == NONE {
                let edges = first_edge[v] as usize..first_edge[v + 1] as usize;
                for &w in &targets[edges] {
                    retained[w as usize] = true;
                }
            }
        }
        for v in 0..n {
            if dfnum[v] == NONE && !retained[v] {
                search(v as u32, &mut dfnum, &mut order, &mut parent, &mut targets);
            }
        }
        for v in 0..n {
            if dfnum[v] != NONE {
                continue;
            }
            match unreached {
                Unreached::Walk => {
                    search(v as u32, &mut dfnum, &mut order, &mut parent, &mut targets)
                }
                Unreached::OneByOne => {
                    dfnum[v] = order.len() as u32;
                    order.push(v as u32);
                    parent.push(0);
                    // Marked like tree edges: they are no one's predecessors.
                    targets[first_edge[v] as usize..first_edge[v + 1] as usize].fill(NONE);
                }
            }
        }
    }

    // 2. Predecessor lists by preorder number, holding the retainers' preorder numbers (but the
    //    parent's tree edge), so that the next step reads them front to back. `pred_end[w]` starts
    //    as the exclusive end of w's slot; filling walks it back to the start.
    let mut pred_end = retainers; // (reusing the memory)
    let mut running = 0u32;
    for slot in &mut pred_end {
        running += *slot;
        *slot = running;
    }
    let mut preds = vec![0u32; running as usize];
    for (from, &from_number) in dfnum.iter().enumerate() {
        for &to_number in &targets[first_edge[from] as usize..first_edge[from + 1] as usize] {
            if to_number == NONE {
                continue; // a tree edge
            }
            let slot = &mut pred_end[to_number as usize];
            *slot -= 1;
            preds[*slot as usize] = from_number;
        }
    }
    let pred_start = pred_end; // each slot now starts where its count was walked back to

    // 3. Semi-dominators, in reverse preorder. `label[v]` holds the smallest semi-dominator number on
    //    v's compressed path in the forest of processed nodes; `ancestor[v]` is NONE until v is linked.
    //    They take the edges' memory, which is no longer needed.
    let mut semi = dfnum; // (reusing the memory)
    for (w, slot) in semi.iter_mut().enumerate() {
        *slot = w as u32;
    }
    let mut label = targets;
    label.clear();
    label.extend_from_slice(&semi);
    let mut ancestor = first_edge;
    ancestor.clear();
    ancestor.resize(n, NONE);
    let mut path: Vec<u32> = Vec::new();
    for w in (1..n).rev() {
        let mut best = parent[w];
        for &v in &preds[pred_start[w] as usize..pred_start[w + 1] as usize] {
            if v as usize == w {
                continue; // a node retaining itself says nothing about its dominators
            }
            let candidate = if (v as usize) < w {
                v // not yet processed: its own number
            } else {
                eval(v, &mut ancestor, &mut label, &mut path)
            };
            best = best.min(candidate);
        }
        semi[w] = best;
        label[w] = best;
        ancestor[w] = parent[w];
    }
    drop(preds);
    drop(pred_start);

    // 4. Immediate dominators, in preorder: the nearest ancestor of the parent at or above semi.
    let mut idom = parent;
    idom[0] = 0;
    for w in 1..n {
        let mut d = idom[w];
        while d > semi[w] {
            d = idom[d as usize];
        }
        idom[w] = d;
    }

    // 5. Children lists for walking the tree, in the memory of `label` and `ancestor`.
    let mut first_child = label;
    first_child.clear();
    first_child.resize(n, NONE);
    let mut next_sibling = ancestor;
    next_sibling.fill(NONE);
    for w in (1..n).rev() {
        let parent = idom[w] as usize;
        next_sibling[w] = first_child[parent];
        first_child[parent] = w as u32;
    }
    DominatorTree {
        order,
        idom,
        first_child,
        next_sibling,
    }
}

/// The smallest semi-dominator number on the path from `v` up to (not including) the root of its
/// tree in the forest, compressing the path on the way.
fn eval(v: u32, ancestor: &mut [u32], label: &mut [u32], path: &mut Vec<u32>) -> u32 {
    let a = ancestor[v as usize];
    if ancestor[a as usize] == NONE {
        return label[v as usize]; // v hangs right under a tree's root: nothing to compress
    }
    let mut x = v;
    while ancestor[ancestor[x as usize] as usize] != NONE {
        path.push(x);
        x = ancestor[x as usize];
    }
    while let Some(y) = path.pop() {
        let a = ancestor[y as usize] as usize;
        if label[a] < label[y as usize] {
            label[y as usize] = label[a];
        }
        ancestor[y as usize] = ancestor[a];
    }
    label[v as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: u8 = 0;
    const WEAK: u8 = 1;
    const SHORTCUT: u8 = 2;

    /// Builds a graph from `(from, to, type)` triples, keeping the retaining edges as the `v8`
    /// convention does (weak edges never; shortcuts only from the root).
    fn graph(n: usize, edges: &[(u32, u32, u8)]) -> RetainingEdges {
        let mut sorted: Vec<(u32, u32, u8)> = edges
            .iter()
            .copied()
            .filter(|&(from, _, kind)| kind == STRONG || (kind == SHORTCUT && from == 0))
            .collect();
        sorted.sort_by_key(|e| e.0);
        let mut first = vec![0u32; n + 1];
        for e in &sorted {
            first[e.0 as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let targets = sorted.iter().map(|e| e.1).collect();
        RetainingEdges {
            first_edge: first,
            targets,
        }
    }

    /// Immediate dominator of every node, by node ordinal.
    fn idoms(n: usize, edges: &[(u32, u32, u8)]) -> Vec<u32> {
        idoms_with(n, edges, Unreached::Walk)
    }

    fn idoms_with(n: usize, edges: &[(u32, u32, u8)], unreached: Unreached) -> Vec<u32> {
        let tree = dominator_tree(graph(n, edges), 0, unreached);
        let mut by_node = vec![NONE; n];
        for (w, &node) in tree.order.iter().enumerate() {
            by_node[node as usize] = tree.order[tree.idom[w] as usize];
        }
        by_node
    }

    #[test]
    fn lengauer_tarjan_paper_example() {
        // The flow graph of Lengauer & Tarjan (1979), figure 1, with R = 0 and A..L = 1..12.
        let (r, a, b, c, d, e, f, g, h, i, j, k, l) = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
        let edges = [
            (r, a),
            (r, b),
            (r, c),
            (a, d),
            (b, a),
            (b, d),
            (b, e),
            (c, f),
            (c, g),
            (d, l),
            (e, h),
            (f, i),
            (g, i),
            (g, j),
            (h, e),
            (h, k),
            (i, k),
            (j, i),
            (k, i),
            (k, r),
            (l, h),
        ]
        .map(|(x, y)| (x, y, STRONG));
        let got = idoms(13, &edges);
        let want = [r, r, r, r, r, r, c, c, r, r, g, r, d];
        assert_eq!(got, want);
    }

    #[test]
    fn weak_edges_do_not_dominate_and_weakly_held_nodes_hang_off_the_root() {
        // 0 → 1 → 2 → 3 strongly; 0 ⇢ 4 weakly; 4 → 5; 1 ⇢ 3 weakly (ignored).
        let edges = [
            (0, 1, STRONG),
            (1, 2, STRONG),
            (2, 3, STRONG),
            (1, 3, WEAK),
            (0, 4, WEAK),
            (4, 5, STRONG),
        ];
        assert_eq!(idoms(6, &edges), vec![0, 0, 1, 2, 0, 4]);
    }

    #[test]
    fn shortcuts_count_only_from_the_root() {
        // 0 -shortcut-> 1 (counts); 1 → 2; 3 -shortcut-> 2 is ignored; 0 → 3.
        let edges = [
            (0, 1, SHORTCUT),
            (1, 2, STRONG),
            (3, 2, SHORTCUT),
            (0, 3, STRONG),
        ];
        assert_eq!(idoms(4, &edges), vec![0, 0, 1, 0]);
    }

    #[test]
    fn unreachable_cycles_are_attached_to_the_root() {
        // 1 ↔ 2 reachable from nothing; 3 only weakly from 2.
        let edges = [(1, 2, STRONG), (2, 1, STRONG), (2, 3, WEAK)];
        let got = idoms(4, &edges);
        assert_eq!(got[0], 0);
        assert_eq!(got[3], 0, "a weakly held node hangs off the root");
        // The first orphan in index order is attached to the root and dominates the rest of its cycle.
        assert_eq!((got[1], got[2]), (0, 1));
    }

    #[test]
    fn devtools_attaches_unreachable_cycles_one_node_at_a_time() {
        // 1 ↔ 2 reachable from nothing, 2 → 3 and 0 → 4 → 3: in DevTools, 1 and 2 each hang off
        // the root, and 2's edge to 3 does not count, so 4 dominates 3.
        let edges = [
            (1, 2, STRONG),
            (2, 1, STRONG),
            (2, 3, STRONG),
            (0, 4, STRONG),
            (4, 3, STRONG),
        ];
        assert_eq!(
            idoms_with(5, &edges, Unreached::OneByOne),
            vec![0, 0, 0, 4, 0]
        );
        assert_eq!(idoms_with(5, &edges, Unreached::Walk), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn an_unretained_orphan_keeps_what_only_it_reaches_even_when_that_comes_first() {
        // 1 ↔ 2 reachable from nothing but 3, which nothing retains (0 holds it weakly). 3 is
        // attached first, whatever the index order, so it dominates the cycle.
        let edges = [(1, 2, STRONG), (2, 1, STRONG), (3, 1, STRONG), (0, 3, WEAK)];
        assert_eq!(idoms(4, &edges), vec![0, 3, 1, 0]);
    }

    #[test]
    fn retained_sizes_add_up_the_dominated_subtree() {
        // diamond: 0 → 1, 0 → 2, 1 → 3, 2 → 3, 3 → 4
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)].map(|(a, b)| (a, b, STRONG));
        let tree = dominator_tree(graph(5, &edges), 0, Unreached::Walk);
        let sizes = [0u64, 10, 20, 30, 40];
        let retained = tree.retained_sizes(|node| sizes[node as usize]);
        let by_node = |node: u32| {
            let w = tree.order.iter().position(|&o| o == node).unwrap();
            retained[w]
        };
        assert_eq!(
            [0, 1, 2, 3, 4].map(by_node),
            [100, 10, 20, 70, 40],
            "3 and 4 belong to neither 1 nor 2"
        );
    }

    /// Dominators by the textbook definition (iterate `dom(n) = {n} ∪ ⋂ dom(preds)` to a fixpoint),
    /// for checking the fast algorithm on random graphs where every node is reachable.
    fn naive_idoms(n: usize, edges: &[(u32, u32, u8)]) -> Vec<u32> {
        let mut dom: Vec<Vec<bool>> = (0..n)
            .map(|v| (0..n).map(|u| v != 0 || u == 0).collect())
            .collect();
        let mut changed = true;
        while changed {
            changed = false;
            for v in 1..n {
                let mut next = vec![true; n];
                for &(from, to, _) in edges {
                    if to as usize == v {
                        for u in 0..n {
                            next[u] &= dom[from as usize][u];
                        }
                    }
                }
                next[v] = true;
                if next != dom[v] {
                    dom[v] = next;
                    changed = true;
                }
            }
        }
        (0..n)
            .map(|v| {
                if v == 0 {
                    return 0;
                }
                // The strict dominator that every other strict dominator dominates.
                let strict: Vec<usize> = (0..n).filter(|&u| u != v && dom[v][u]).collect();
                *strict
                    .iter()
                    .find(|&&d| strict.iter().all(|&u| dom[d][u]))
                    .unwrap() as u32
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_on_random_graphs() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |bound: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % u64::from(bound)) as u32
        };
        for _ in 0..300 {
            let n = 2 + next(14) as usize;
            let mut edges = Vec::new();
            // A random spanning tree keeps every node reachable; random extra edges make it a graph.
            for v in 1..n as u32 {
                edges.push((next(v), v, STRONG));
            }
            for _ in 0..next(3 * n as u32) {
                edges.push((next(n as u32), next(n as u32), STRONG));
            }
            assert_eq!(idoms(n, &edges), naive_idoms(n, &edges), "edges: {edges:?}");
        }
    }
}
