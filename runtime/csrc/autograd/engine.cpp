// Note [Engine]: one pass counts, for every node reachable from the roots, how many edges point at
// it; a node runs once all of them have delivered their gradient (summed in its input buffer).
// Ready nodes run latest-created first, which matches torch's order on a single device.
#include "autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.h"
#include "ops/ops.h"

namespace ember {
namespace {

struct InputBuffer {
  std::vector<Tensor> grads;
  void add(size_t slot, Tensor g) {
    if (!g.defined()) return;
    Tensor& cur = grads[slot];
    cur = cur.defined() ? add_grads(cur, g) : std::move(g);
  }
  static Tensor add_grads(const Tensor& a, const Tensor& b) { return ::ember::add(a, b); }
};

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

// Captures for autograd.grad: the gradient arriving at (node, slot).
struct Capture {
  Node* node;
  uint32_t slot;
  size_t out_index;
};

std::vector<Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                        const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph,
                        bool accumulate, bool allow_unused) {
  EMBER_CHECK(roots.size() == grad_roots.size(), "[backward] got ", roots.size(), " tensors but ",
              grad_roots.size(), " gradients");
  GradModeGuard grad_mode(create_graph);

  // Root gradients, checked against their tensors.
  std::vector<Edge> root_edges;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    EMBER_CHECK(r.requires_grad(), "[backward] element ", i, " of tensors does not require grad and does "
                "not have a grad_fn");
    Tensor g = grad_roots[i];
    if (!g.defined()) {
      EMBER_CHECK(r.numel() == 1, "[backward] grad can be implicitly created only for scalar outputs, got ",
                  describe(r));
      g = ones(r.sizes(), r.dtype(), r.device());
    } else {
      EMBER_CHECK(g.sizes() == r.sizes(), "[backward] gradient has shape ", g.sizes(), " but the tensor has shape ",
                  r.sizes());
    }
    root_edges.push_back(gradient_edge(r));
    root_grads.push_back(g);
  }

  // Where autograd.grad wants gradients delivered.
  std::vector<Capture> captures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    EMBER_CHECK(inputs[i].requires_grad(), "[grad] input ", i, " (", describe(inputs[i]),
                ") does not require grad");
    Edge e = gradient_edge(inputs[i]);
    captures.push_back({e.fn.get(), e.input_nr, i});
  }

  // Dependency counts over the reachable graph, and a post-order (children before parents).
  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen;
  std::vector<Node*> post_order;
  {
    std::vector<std::pair<Node*, size_t>> stack;  // (node, next edge to visit)
    for (auto& e : root_edges)
      if (e.valid() && seen.insert(e.fn.get()).second) stack.push_back({e.fn.get(), 0});
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (next < n->next_edges.size()) {
        Edge& e = n->next_edges[next++];
        if (!e.valid()) continue;
        ++deps[e.fn.get()];
        if (seen.insert(e.fn.get()).second) stack.push_back({e.fn.get(), 0});
      } else {
        post_order.push_back(n);
        stack.pop_back();
      }
    }
  }
  // autograd.grad runs only the nodes through which some captured input is reachable, so unrelated
  // branches neither run their backward formulas nor free their saved tensors (torch's exec_info).
  const bool prune = !accumulate;
  std::unordered_set<Node*> leads_to_capture;
  if (prune) {
    for (auto& c : captures) leads_to_capture.insert(c.node);
    for (Node* n : post_order)
      for (auto& e : n->next_edges)
        if (e.valid() && leads_to_capture.count(e.fn.get())) { leads_to_capture.insert(n); break; }
  }
  auto needs_run = [&](Node* n) {
    if (!prune) return true;
    for (auto& e : n->next_edges)
      if (e.valid() && leads_to_capture.count(e.fn.get())) return true;
    return false;
  };

  std::unordered_map<Node*, InputBuffer> buffers;
  auto buffer_for = [&](Node* n) -> InputBuffer& {
    auto it = buffers.find(n);
    if (it == buffers.end()) {
      it = buffers.emplace(n, InputBuffer{}).first;
      it->second.grads.resize(std::max<size_t>(n->outputs.size(), 1));
    }
    return it->second;
  };
  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  // Keep nodes alive while they run even if the graph drops them.
  std::vector<std::shared_ptr<Node>> keep_alive;
  for (size_t i = 0; i < root_edges.size(); ++i) {
    Edge& e = root_edges[i];
    if (!e.valid()) continue;
    buffer_for(e.fn.get()).add(e.input_nr, root_grads[i]);
    keep_alive.push_back(e.fn);
  }
  for (auto& e : root_edges)
    if (e.valid() && deps[e.fn.get()] == 0) { ready.push(e.fn.get()); deps[e.fn.get()] = -1; }

  std::vector<Tensor> results(inputs.size());
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    if (prune && !leads_to_capture.count(node)) continue;
    std::vector<Tensor> grads = std::move(buffer_for(node).grads);
    buffers.erase(node);
    auto* accumulator = dynamic_cast<AccumulateGrad*>(node);
    // Tensor hooks: a leaf's hooks live on its AutogradMeta, a non-leaf's on its grad_fn (by output).
    if (accumulator && grads[0].defined() && accumulator->variable.impl()->autograd) {
      for (auto& hook : accumulator->variable.impl()->autograd->hooks) {
        if (!hook) continue;  // removed
        Tensor r = hook(grads[0]);
        if (r.defined()) grads[0] = r;
      }
    }
    for (auto& [slot, hook] : node->pre_hooks) {
      if (hook && slot < grads.size() && grads[slot].defined()) {
        Tensor r = hook(grads[slot]);
        if (r.defined()) grads[slot] = r;
      }
    }
    for (auto& [slot, hook] : node->retains_grad_hooks)
      if (hook && slot < grads.size() && grads[slot].defined()) hook(grads[slot]);
    for (auto& c : captures) {
      if (c.node == node && c.slot < grads.size() && grads[c.slot].defined()) {
        results[c.out_index] = results[c.out_index].defined() ? add(results[c.out_index], grads[c.slot]) : grads[c.slot];
      }
    }
    std::vector<Tensor> outs;
    if (accumulator) {
      if (accumulate && grads[0].defined()) {
        node->apply(std::move(grads));
        // Copy: a hook may register or remove hooks while they run.
        auto post_hooks = accumulator->variable.impl()->autograd_meta().post_accumulate_grad_hooks;
        for (auto& hook : post_hooks)
          if (hook) hook(accumulator->variable);
      }
    } else if (needs_run(node)) {
      outs = node->apply(std::move(grads));
      if (!retain_graph) node->release_saved();
    }
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      Edge& e = node->next_edges[i];
      if (!e.valid()) continue;
      if (i < outs.size()) buffer_for(e.fn.get()).add(e.input_nr, std::move(outs[i]));
      keep_alive.push_back(e.fn);
      if (--deps[e.fn.get()] == 0) { ready.push(e.fn.get()); deps[e.fn.get()] = -1; }
    }
  }
  for (size_t i = 0; i < results.size(); ++i)
    EMBER_CHECK(results[i].defined() || allow_unused, "[grad] One of the differentiated Tensors (input ", i,
                ", ", describe(inputs[i]), ") appears to not have been used in the graph. Set allow_unused=True "
                "if this is the desired behavior.");
  return results;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph) {
  run(roots, grad_roots, {}, retain_graph || create_graph, create_graph, /*accumulate=*/true, true);
}

std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  return run(roots, grad_roots, inputs, retain_graph || create_graph, create_graph, false, allow_unused);
}

}  // namespace ember
