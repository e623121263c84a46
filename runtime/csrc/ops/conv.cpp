// Convolution and pooling frontends (spec: runtime/spec/conv.yaml). Kernels: cpu/conv.cpp,
// cuda/conv.cu. Backward rules at the bottom.
//
// Note [Convolution as im2col + GEMM]
// im2col lays the input windows out as columns [C*kh*kw, N*oh*ow]: the batch is folded into the
// GEMM's columns, so a convolution is one bmm over the groups,
//   out[g] = weight[g] [Cout/G, Cin/G*kh*kw] @ cols[g] [Cin/G*kh*kw, N*oh*ow],
// followed by one copy to [N, Cout, oh, ow] that also adds the bias. Autograd differentiates the
// parts: bmm gives the weight gradient as one GEMM per group over all images, and im2col's adjoint
// col2im the input gradient. A transposed convolution is the same pipeline run backwards:
// cols = weight^T @ x, then col2im. 1x1 stride-1 convolutions skip im2col (a permuted copy).
#include <algorithm>
#include <string>

#include "autograd/node.h"
#include "dispatch/dispatcher.h"
#include "generated/kernels_conv.h"
#include "ops/ops.h"

namespace ember {
namespace {

std::string pair_str(IntSpan v) { return "(" + std::to_string(v[0]) + " x " + std::to_string(v[1]) + ")"; }

// Each window parameter must be [h, w]; kernel, stride and dilation positive, padding non-negative.
Window2dAttrs window_attrs(const char* op, IntSpan kernel, IntSpan dilation, IntSpan padding, IntSpan stride) {
  for (const auto& [v, name, lo] : {std::tuple{kernel, "kernel_size", 1}, std::tuple{dilation, "dilation", 1},
                                    std::tuple{padding, "padding", 0}, std::tuple{stride, "stride", 1}}) {
    EMBER_CHECK(v.size() == 2, "[", op, "] expected ", name, " to have 2 elements [h, w], got ", DimVector(v));
    EMBER_CHECK(v[0] >= lo && v[1] >= lo, "[", op, "] ", name, " must be ", lo == 1 ? "positive" : "non-negative",
                ", got ", DimVector(v));
  }
  return {.kernel = DimVector(kernel), .dilation = DimVector(dilation), .padding = DimVector(padding),
          .stride = DimVector(stride)};
}

// Output size of a window sliding over `in` elements (torch's pooling_output_shape): floor, or ceil
// where the last window still starts inside the input or its left padding.
int64_t window_out(int64_t in, int64_t k, int64_t d, int64_t p, int64_t s, bool ceil_mode = false) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  if (span < 0) return 0;
  int64_t o = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (ceil_mode && (o - 1) * s >= in + p) --o;
  return o;
}

// The output grid of a convolution-style window; raises when the kernel does not fit.
std::pair<int64_t, int64_t> conv_out_size(const char* op, int64_t h, int64_t w, const Window2dAttrs& a,
                                          const Tensor& x) {
  const int64_t oh = window_out(h, a.kernel[0], a.dilation[0], a.padding[0], a.stride[0]);
  const int64_t ow = window_out(w, a.kernel[1], a.dilation[1], a.padding[1], a.stride[1]);
  if (oh <= 0 || ow <= 0) {
    const int64_t ph = h + 2 * a.padding[0], pw = w + 2 * a.padding[1];
    const int64_t kh = a.dilation[0] * (a.kernel[0] - 1) + 1, kw = a.dilation[1] * (a.kernel[1] - 1) + 1;
    fail(ErrorKind::Runtime, "[", op, "] Calculated padded input size per channel: (", ph, " x ", pw,
         "). Kernel size: (", kh, " x ", kw, "). Kernel size can't be greater than actual input size (input ",
         describe(x), ")");
  }
  return {oh, ow};
}

void check_float(const char* op, const Tensor& t, const char* what) {
  EMBER_CHECK_KIND(is_floating(t.dtype()), ErrorKind::NotImplemented, "[", op, "] not implemented for '",
                   torch_type_name(t.dtype()), "' (", what, " ", describe(t), ")");
}

// A 3-D (unbatched) input gets a batch dim of 1; returns whether it did.
bool batch_input(const char* op, Tensor& x) {
  EMBER_CHECK(x.dim() == 3 || x.dim() == 4, "[", op, "] Expected 3D (unbatched) or 4D (batched) input, but got "
              "input of size: ", x.sizes());
  if (x.dim() == 4) return false;
  x = unsqueeze(x, 0);
  return true;
}

// Checks shared by conv2d and conv_transpose2d: weight 4-D, groups dividing the channels, bias of
// `out_channels` elements, one floating dtype and one device throughout.
void check_conv_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups,
                     int64_t out_channels) {
  EMBER_CHECK(weight.dim() == 4, "[", op, "] Expected 4-dimensional weight, but got weight of size ",
              weight.sizes());
  EMBER_CHECK(groups > 0, "[", op, "] non-positive groups is not supported (groups=", groups, ")");
  check_float(op, x, "input");
  EMBER_CHECK_TYPE(weight.dtype() == x.dtype(), "[", op, "] Input type (", torch_type_name(x.dtype()),
                   ") and weight type (", torch_type_name(weight.dtype()), ") should be the same");
  EMBER_CHECK(weight.device() == x.device(), "[", op, "] Input ", describe(x), " and weight ", describe(weight),
              " must be on the same device");
  if (bias.defined()) {
    EMBER_CHECK(bias.dim() == 1 && bias.sizes()[0] == out_channels, "[", op, "] Given weight of size ",
                weight.sizes(), ", expected bias to be 1-dimensional with ", out_channels,
                " elements, but got bias of size ", bias.sizes(), " instead");
    EMBER_CHECK_TYPE(bias.dtype() == x.dtype(), "[", op, "] Input type (", torch_type_name(x.dtype()),
                     ") and bias type (", torch_type_name(bias.dtype()), ") should be the same");
    EMBER_CHECK(bias.device() == x.device(), "[", op, "] Input ", describe(x), " and bias ", describe(bias),
                " must be on the same device");
  }
}

// [C, N, oh, ow] GEMM result -> contiguous [N, C, oh, ow], the bias added in the same pass (the
// elementwise output may keep the input's permuted layout: contiguous() is then the one copy).
Tensor to_batch_major(const Tensor& out_cn, const Tensor& bias) {
  static constexpr int64_t kSwap[4] = {1, 0, 2, 3};
  Tensor out = permute(out_cn, kSwap);
  if (bias.defined()) out = add(out, reshape(bias, DimVector{bias.sizes()[0], 1, 1}));
  return contiguous(out);
}

}  // namespace

Tensor im2col(const Tensor& x, IntSpan kernel_size, IntSpan dilation, IntSpan padding, IntSpan stride) {
  Window2dAttrs attrs = window_attrs("im2col", kernel_size, dilation, padding, stride);
  EMBER_CHECK(x.dim() == 4, "[im2col] Expected 4D input [N, C, H, W], but got input of size: ", x.sizes());
  check_float("im2col", x, "input");
  const int64_t n = x.sizes()[0], c = x.sizes()[1];
  const auto [oh, ow] = conv_out_size("im2col", x.sizes()[2], x.sizes()[3], attrs, x);
  Tensor out = Tensor::empty(DimVector{c * attrs.kernel[0] * attrs.kernel[1], n * oh * ow}, x.dtype(), x.device());
  const Tensor in[1] = {contiguous(x)};
  dispatch<OpId::im2col>(in, std::span<Tensor>(&out, 1), attrs);
  return out;
}

Tensor col2im(const Tensor& cols, IntSpan output_size, IntSpan kernel_size, IntSpan dilation, IntSpan padding,
              IntSpan stride) {
  Window2dAttrs attrs = window_attrs("col2im", kernel_size, dilation, padding, stride);
  EMBER_CHECK(output_size.size() == 2 && output_size[0] >= 0 && output_size[1] >= 0,
              "[col2im] expected output_size to be 2 non-negative sizes [H, W], got ", DimVector(output_size));
  EMBER_CHECK(cols.dim() == 2, "[col2im] expected columns [C*kh*kw, N*oh*ow], got ", describe(cols));
  check_float("col2im", cols, "input");
  const int64_t kk = attrs.kernel[0] * attrs.kernel[1];
  const auto [oh, ow] = conv_out_size("col2im", output_size[0], output_size[1], attrs, cols);
  const int64_t rows = cols.sizes()[0], ncols = cols.sizes()[1];
  EMBER_CHECK(rows % kk == 0 && ncols % (oh * ow) == 0, "[col2im] Expected size of input's dimension 1 to be "
              "divisible by the product of kernel_size (", kk, ") and its columns by the number of sliding blocks ",
              oh, " * ", ow, " = ", oh * ow, " of output_size ", DimVector(output_size), ", but got input of size ",
              cols.sizes());
  Tensor out = Tensor::empty(DimVector{ncols / (oh * ow), rows / kk, output_size[0], output_size[1]}, cols.dtype(),
                             cols.device());
  const Tensor in[1] = {contiguous(cols)};
  dispatch<OpId::col2im>(in, std::span<Tensor>(&out, 1), attrs);
  return out;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntSpan stride, IntSpan padding,
              IntSpan dilation, int64_t groups) {
  Tensor x = input;
  const bool unbatched = batch_input("conv2d", x);
  check_conv_args("conv2d", x, weight, bias, groups, weight.dim() == 4 ? weight.sizes()[0] : 0);
  const int64_t n = x.sizes()[0], cin = x.sizes()[1], h = x.sizes()[2], w = x.sizes()[3];
  const int64_t cout = weight.sizes()[0], kh = weight.sizes()[2], kw = weight.sizes()[3];
  EMBER_CHECK(cout % groups == 0, "[conv2d] Given groups=", groups, ", expected weight to be divisible by ",
              groups, " at dimension 0, but got weight of size ", weight.sizes(), " instead");
  EMBER_CHECK(weight.sizes()[1] * groups == cin, "[conv2d] Given groups=", groups, ", weight of size ",
              weight.sizes(), ", expected input", x.sizes(), " to have ", weight.sizes()[1] * groups,
              " channels, but got ", cin, " channels instead");
  const int64_t k2[2] = {kh, kw};
  const Window2dAttrs win = window_attrs("conv2d", k2, dilation, padding, stride);
  const auto [oh, ow] = conv_out_size("conv2d", h, w, win, x);
  const bool pointwise = kh == 1 && kw == 1 && win.stride[0] == 1 && win.stride[1] == 1 && win.padding[0] == 0 &&
                         win.padding[1] == 0;
  static constexpr int64_t kSwap[4] = {1, 0, 2, 3};
  const Tensor cols = pointwise ? reshape(permute(x, kSwap), DimVector{cin, n * h * w})
                                : im2col(x, k2, dilation, padding, stride);
  const int64_t kg = cin / groups * kh * kw;
  Tensor out = bmm(reshape(weight, DimVector{groups, cout / groups, kg}),
                   reshape(cols, DimVector{groups, kg, n * oh * ow}));
  out = to_batch_major(reshape(out, DimVector{cout, n, oh, ow}), bias);
  return unbatched ? squeeze(out, int64_t{0}) : out;
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntSpan stride,
                        IntSpan padding, IntSpan output_padding, int64_t groups, IntSpan dilation) {
  Tensor x = input;
  const bool unbatched = batch_input("conv_transpose2d", x);
  const int64_t out_channels = weight.dim() == 4 ? weight.sizes()[1] * groups : 0;
  check_conv_args("conv_transpose2d", x, weight, bias, groups, out_channels);
  const int64_t n = x.sizes()[0], cin = x.sizes()[1], h = x.sizes()[2], w = x.sizes()[3];
  const int64_t kh = weight.sizes()[2], kw = weight.sizes()[3];
  EMBER_CHECK(weight.sizes()[0] == cin && cin % groups == 0, "[conv_transpose2d] Given transposed=1, groups=", groups,
              ", weight of size ", weight.sizes(), ", expected input", x.sizes(), " to have ", weight.sizes()[0],
              " channels (divisible by groups), but got ", cin, " channels instead");
  const int64_t k2[2] = {kh, kw};
  const Window2dAttrs win = window_attrs("conv_transpose2d", k2, dilation, padding, stride);
  EMBER_CHECK(output_padding.size() == 2, "[conv_transpose2d] expected output_padding to have 2 elements, got ",
              DimVector(output_padding));
  int64_t out_hw[2];
  const int64_t in_hw[2] = {h, w};
  for (int i = 0; i < 2; ++i) {
    // The col2im grid must be the input's grid, so output_padding stays below the stride (torch also
    // allows it below the dilation; that case is not supported here).
    EMBER_CHECK(output_padding[i] >= 0 && output_padding[i] < win.stride[i], "[conv_transpose2d] output padding "
                "must be non-negative and smaller than stride, but got output_padding ", DimVector(output_padding),
                " and stride ", win.stride);
    out_hw[i] = (in_hw[i] - 1) * win.stride[i] - 2 * win.padding[i] + win.dilation[i] * (k2[i] - 1) +
                output_padding[i] + 1;
  }
  EMBER_CHECK(out_hw[0] > 0 && out_hw[1] > 0, "[conv_transpose2d] Given input size per channel: ", pair_str(in_hw),
              ". Calculated output size per channel: ", pair_str(out_hw), ". Output size is too small");
  static constexpr int64_t kSwap[4] = {1, 0, 2, 3};
  const int64_t cg = cin / groups, kg = weight.sizes()[1] * kh * kw;
  const Tensor xcols = reshape(permute(x, kSwap), DimVector{groups, cg, n * h * w});
  Tensor cols = bmm(transpose(reshape(weight, DimVector{groups, cg, kg}), 1, 2), xcols);
  Tensor out = col2im(reshape(cols, DimVector{groups * kg, n * h * w}), out_hw, k2, dilation, padding, stride);
  if (bias.defined()) out = add(out, reshape(bias, DimVector{out_channels, 1, 1}));
  return unbatched ? squeeze(out, int64_t{0}) : out;
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntSpan kernel_size, IntSpan stride,
                                                   IntSpan padding, IntSpan dilation, bool ceil_mode) {
  Tensor x = input;
  const bool unbatched = batch_input("max_pool2d", x);
  check_float("max_pool2d", x, "input");
  const Window2dAttrs win =
      window_attrs("max_pool2d", kernel_size, dilation, padding, stride.empty() ? kernel_size : stride);
  const int64_t n = x.sizes()[0], c = x.sizes()[1], h = x.sizes()[2], w = x.sizes()[3];
  EMBER_CHECK(h > 0 && w > 0, "[max_pool2d] Expected input's non-batch dimensions to have positive length, but "
              "input has a shape of ", x.sizes());
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(win.padding[i] * 2 <= win.kernel[i], "[max_pool2d] pad should be at most half of effective kernel "
                "size, but got pad=", win.padding[i], ", kernel_size=", win.kernel[i], " and dilation=",
                win.dilation[i]);
  const int64_t oh = window_out(h, win.kernel[0], win.dilation[0], win.padding[0], win.stride[0], ceil_mode);
  const int64_t ow = window_out(w, win.kernel[1], win.dilation[1], win.padding[1], win.stride[1], ceil_mode);
  EMBER_CHECK(oh > 0 && ow > 0, "[max_pool2d] Given input size: (", c, "x", h, "x", w,
              "). Calculated output size: (", c, "x", oh, "x", ow, "). Output size is too small");
  const DimVector sizes{n, c, oh, ow};
  Tensor outs[2] = {Tensor::empty(sizes, x.dtype(), x.device()), Tensor::empty(sizes, ScalarType::Int64, x.device())};
  const Tensor in[1] = {contiguous(x)};
  dispatch<OpId::max_pool2d_with_indices>(in, outs, win);
  if (unbatched) return {squeeze(outs[0], int64_t{0}), squeeze(outs[1], int64_t{0})};
  return {outs[0], outs[1]};
}

namespace backward {

void im2col(BackwardCtx& ctx, const Window2dAttrs& a) {
  if (!ctx.needs_grad(0)) return;
  const DimVector& in = ctx.input_meta(0).sizes;
  const int64_t hw[2] = {in[2], in[3]};
  ctx.set_grad(0, ember::col2im(ctx.grad(0), hw, a.kernel, a.dilation, a.padding, a.stride));
}

void col2im(BackwardCtx& ctx, const Window2dAttrs& a) {
  if (ctx.needs_grad(0)) ctx.set_grad(0, ember::im2col(ctx.grad(0), a.kernel, a.dilation, a.padding, a.stride));
}

// Each output element routes its gradient to the input element it took: a scatter_add over the plane
// (windows overlap when stride < kernel, so several outputs may hit one input).
void max_pool2d_with_indices(BackwardCtx& ctx, const Window2dAttrs&) {
  if (!ctx.needs_grad(0)) return;
  const OutputMeta& meta = ctx.input_meta(0);
  const Tensor indices = ctx.output(1);  // [N, C, oh, ow] like the input [N, C, H, W]
  const DimVector& is = indices.sizes();
  const int64_t planes = is[0] * is[1];
  const DimVector flat{planes, is[2] * is[3]};
  Tensor g = zeros(DimVector{planes, meta.sizes[2] * meta.sizes[3]}, meta.dtype, meta.device);
  g = scatter_add(g, 1, reshape(indices, flat), reshape(ctx.grad(0), flat));
  ctx.set_grad(0, reshape(g, meta.sizes));
}

}  // namespace backward
}  // namespace ember
