//! The dominator tree of the heap graph and the retained size of every node.
//!
//! Node `d` dominates node `n` when every path from the root to `n` passes through `d`: if `d` went
//! away, `n` would be collected with it. The retained size of `d` is the shallow size of everything it
//! dominates, itself included.
//!
//! Edges that retain nothing (weak edges, and shortcut edges other than the root's — the rule Chrome
//! DevTools applies) are left out. Nodes that then cannot be reached from the root are attached to it
//! the way DevTools does: first every such node that has no retaining edge at all (it is held only
//! weakly), each with everything it reaches; then any node still left over, in index order.
//!
//! The algorithm is Semi-NCA (Georgiadis, *Linear-Time Algorithms for Dominators and Related
//! Problems*, 2005; also what LLVM uses): one depth-first search numbers the nodes in preorder,
//! semi-dominators come from Lengauer–Tarjan's `eval` with path compression, and each immediate
//! dominator is the nearest common ancestor of the parent and the semi-dominator in the tree built so
//! far. Everything is iterative (heap graphs are deep) and indexed by `u32`.

use super::graph::{EdgeKinds, edge_target, edge_type};

const NONE: u32 = u32::MAX;

/// The graph as the dominator computation sees it.
pub(crate) struct GraphView<'a> {
    /// `first_edge[i]..first_edge[i + 1]` index node `i`'s edges; one longer than the node count.
    pub first_edge: &'a [u32],
    /// Packed edges (`target << 3 | type`).
    pub edges: &'a [u32],
    pub edge_kinds: EdgeKinds,
    pub root: u32,
}

/// The dominator tree, in the depth-first preorder of the search that built it.
#[derive(Debug)]
pub(crate) struct DominatorTree {
    /// Preorder number → node ordinal. `order[0]` is the root.
    pub order: Vec<u32>,
    /// Preorder number → preorder number of the immediate dominator (the root's is itself, 0).
    /// Always smaller than the node's own number, except for the root.
    pub idom: Vec<u32>,
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

    /// Children lists of the tree: `(start, children)` with `children[start[w]..start[w + 1]]` the
    /// preorder numbers `w` immediately dominates.
    pub fn children(&self) -> (Vec<u32>, Vec<u32>) {
        let n = self.order.len();
        let mut start = vec![0u32; n + 1];
        for w in 1..n {
            start[self.idom[w] as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut cursor = start.clone();
        let mut children = vec![0u32; n.saturating_sub(1)];
        for w in 1..n {
            let d = self.idom[w] as usize;
            children[cursor[d] as usize] = w as u32;
            cursor[d] += 1;
        }
        (start, children)
    }
}

pub(crate) fn dominator_tree(graph: &GraphView<'_>) -> DominatorTree {
    let n = graph.first_edge.len() - 1;
    let kinds = graph.edge_kinds;
    let root = graph.root;
    let essential_edges = |from: u32| {
        let range =
            graph.first_edge[from as usize] as usize..graph.first_edge[from as usize + 1] as usize;
        graph.edges[range]
            .iter()
            .copied()
            .filter(move |&packed| kinds.is_essential(from, root, edge_type(packed)))
            .map(edge_target)
    };

    // 1. Count each node's retaining (essential) edges. `pred_end[v]` ends up as the exclusive end
    //    of v's slot in `preds`; filling walks it back to the start.
    let mut pred_end = vec![0u32; n + 1];
    for from in 0..n as u32 {
        for to in essential_edges(from) {
            pred_end[to as usize] += 1;
        }
    }
    let has_retainers: Vec<bool> = pred_end[..n].iter().map(|&count| count > 0).collect();
    let mut running = 0u32;
    for slot in pred_end.iter_mut().take(n) {
        running += *slot;
        *slot = running;
    }
    pred_end[n] = running;

    // 2. Depth-first search in preorder, from the root, then from the orphans.
    let mut dfnum = vec![NONE; n];
    let mut order: Vec<u32> = Vec::with_capacity(n);
    let mut parent: Vec<u32> = Vec::with_capacity(n);
    let mut stack: Vec<(u32, u32)> = Vec::new();
    let mut search = |start: u32,
                      start_parent: u32,
                      dfnum: &mut Vec<u32>,
                      order: &mut Vec<u32>,
                      parent: &mut Vec<u32>| {
        dfnum[start as usize] = order.len() as u32;
        order.push(start);
        parent.push(start_parent);
        stack.push((start, graph.first_edge[start as usize]));
        while let Some(top) = stack.last_mut() {
            let (v, next) = *top;
            if next == graph.first_edge[v as usize + 1] {
                stack.pop();
                continue;
            }
            top.1 += 1;
            let packed = graph.edges[next as usize];
            if !kinds.is_essential(v, root, edge_type(packed)) {
                continue;
            }
            let w = edge_target(packed);
            if dfnum[w as usize] == NONE {
                dfnum[w as usize] = order.len() as u32;
                order.push(w);
                parent.push(dfnum[v as usize]);
                stack.push((w, graph.first_edge[w as usize]));
            }
        }
    };
    search(root, 0, &mut dfnum, &mut order, &mut parent);
    for v in 0..n {
        if dfnum[v] == NONE && !has_retainers[v] {
            search(v as u32, 0, &mut dfnum, &mut order, &mut parent);
        }
    }
    drop(has_retainers);
    for v in 0..n {
        if dfnum[v] == NONE {
            search(v as u32, 0, &mut dfnum, &mut order, &mut parent);
        }
    }

    // 3. Predecessor lists, by preorder number of the retainer.
    let mut preds = vec![0u32; pred_end[n] as usize];
    for from in 0..n as u32 {
        let from_number = dfnum[from as usize];
        for to in essential_edges(from) {
            let slot = &mut pred_end[to as usize];
            *slot -= 1;
            preds[*slot as usize] = from_number;
        }
    }
    let pred_start = pred_end; // now each node's slot starts where its count was walked back to
    drop(dfnum);

    // 4. Semi-dominators, in reverse preorder. `label[v]` holds the smallest semi-dominator number on
    //    v's compressed path in the forest of processed nodes; `ancestor[v]` is NONE until v is linked.
    let mut semi: Vec<u32> = (0..n as u32).collect();
    let mut label = semi.clone();
    let mut ancestor = vec![NONE; n];
    let mut path: Vec<u32> = Vec::new();
    for w in (1..n).rev() {
        let node = order[w] as usize;
        let mut best = parent[w];
        for &v in &preds[pred_start[node] as usize..pred_start[node + 1] as usize] {
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
    drop(label);
    drop(ancestor);

    // 5. Immediate dominators, in preorder: the nearest ancestor of the parent at or above semi.
    let mut idom = parent;
    if n > 0 {
        idom[0] = 0;
    }
    for w in 1..n {
        let mut d = idom[w];
        while d > semi[w] {
            d = idom[d as usize];
        }
        idom[w] = d;
    }
    DominatorTree { order, idom }
}

/// The smallest semi-dominator number on the path from `v` up to (not including) the root of its
/// tree in the forest, compressing the path on the way.
fn eval(v: u32, ancestor: &mut [u32], label: &mut [u32], path: &mut Vec<u32>) -> u32 {
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
    use super::super::graph::pack_edge;
    use super::*;

    const STRONG: u8 = 0;
    const WEAK: u8 = 1;
    const SHORTCUT: u8 = 2;

    /// Builds a graph from `(from, to, type)` triples.
    fn graph(n: usize, edges: &[(u32, u32, u8)]) -> (Vec<u32>, Vec<u32>) {
        let mut sorted = edges.to_vec();
        sorted.sort_by_key(|e| e.0);
        let mut first = vec![0u32; n + 1];
        for e in &sorted {
            first[e.0 as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let packed = sorted.iter().map(|e| pack_edge(e.1, e.2)).collect();
        (first, packed)
    }

    fn kinds() -> EdgeKinds {
        EdgeKinds {
            weak: Some(WEAK),
            shortcut: Some(SHORTCUT),
        }
    }

    /// Immediate dominator of every node, by node ordinal.
    fn idoms(n: usize, edges: &[(u32, u32, u8)]) -> Vec<u32> {
        let (first_edge, packed) = graph(n, edges);
        let tree = dominator_tree(&GraphView {
            first_edge: &first_edge,
            edges: &packed,
            edge_kinds: kinds(),
            root: 0,
        });
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
    fn retained_sizes_add_up_the_dominated_subtree() {
        // diamond: 0 → 1, 0 → 2, 1 → 3, 2 → 3, 3 → 4
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)].map(|(a, b)| (a, b, STRONG));
        let (first_edge, packed) = graph(5, &edges);
        let tree = dominator_tree(&GraphView {
            first_edge: &first_edge,
            edges: &packed,
            edge_kinds: kinds(),
            root: 0,
        });
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
