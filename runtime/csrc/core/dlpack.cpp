// Tensor <-> DLPack conversions (DLPack v1.0; the ABI is core/dlpack_abi.h).
#include "core/dlpack.h"

#include <vector>

namespace ember {
namespace {

DLDataType to_dl_dtype(ScalarType t) {
  const auto bits = static_cast<uint8_t>(element_size(t) * 8);
  switch (t) {
    case ScalarType::Bool: return {kDLBool, 8, 1};
    case ScalarType::UInt8: return {kDLUInt, bits, 1};
    case ScalarType::Int8: case ScalarType::Int32: case ScalarType::Int64: return {kDLInt, bits, 1};
    case ScalarType::BFloat16: return {kDLBfloat, 16, 1};
    case ScalarType::Float16: case ScalarType::Float32: case ScalarType::Float64: return {kDLFloat, bits, 1};
  }
  return {kDLFloat, bits, 1};
}

ScalarType from_dl_dtype(DLDataType d) {
  EMBER_CHECK_TYPE(d.lanes == 1, "[from_dlpack] vector dtypes (lanes=", d.lanes, ") are not supported");
  switch (d.code) {
    case kDLBool: if (d.bits == 8) return ScalarType::Bool; break;
    case kDLUInt: if (d.bits == 8) return ScalarType::UInt8; break;
    case kDLInt:
      if (d.bits == 8) return ScalarType::Int8;
      if (d.bits == 32) return ScalarType::Int32;
      if (d.bits == 64) return ScalarType::Int64;
      break;
    case kDLFloat:
      if (d.bits == 16) return ScalarType::Float16;
      if (d.bits == 32) return ScalarType::Float32;
      if (d.bits == 64) return ScalarType::Float64;
      break;
    case kDLBfloat: if (d.bits == 16) return ScalarType::BFloat16; break;
    default: break;
  }
  fail(ErrorKind::Type, "[from_dlpack] unsupported DLPack dtype (code ", int(d.code), ", bits ", int(d.bits), ")");
}

struct ExportCtx {
  Tensor tensor;
  std::vector<int64_t> shape, strides;
};

void fill_dl_tensor(DLTensor& dl, ExportCtx& ctx) {
  const Tensor& t = ctx.tensor;
  ctx.shape.assign(t.sizes().begin(), t.sizes().end());
  ctx.strides.assign(t.strides().begin(), t.strides().end());
  dl.data = t.data_ptr();
  dl.device = t.device().is_cpu() ? DLDevice{kDLCPU, 0} : DLDevice{kDLCUDA, t.device().index};
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = to_dl_dtype(t.dtype());
  dl.shape = ctx.shape.data();
  dl.strides = ctx.strides.data();
  dl.byte_offset = 0;
}

template <typename Managed>
void delete_exported(Managed* self) {
  delete static_cast<ExportCtx*>(self->manager_ctx);
  delete self;
}

}  // namespace

DLManagedTensor* to_dlpack(const Tensor& t) {
  auto* m = new DLManagedTensor{};
  auto* ctx = new ExportCtx{t.alias(), {}, {}};
  m->manager_ctx = ctx;
  m->deleter = &delete_exported<DLManagedTensor>;
  fill_dl_tensor(m->dl_tensor, *ctx);
  return m;
}

DLManagedTensorVersioned* to_dlpack_versioned(const Tensor& t, bool is_copy) {
  auto* m = new DLManagedTensorVersioned{};
  auto* ctx = new ExportCtx{t.alias(), {}, {}};
  m->version = {1, 0};
  m->manager_ctx = ctx;
  m->deleter = &delete_exported<DLManagedTensorVersioned>;
  m->flags = is_copy ? DLPACK_FLAG_BITMASK_IS_COPIED : 0;
  fill_dl_tensor(m->dl_tensor, *ctx);
  return m;
}

Tensor from_dlpack(const DLTensor& dl, void* managed, DataPtr::Deleter deleter) {
  ScalarType dtype = from_dl_dtype(dl.dtype);
  Device device;
  switch (dl.device.device_type) {
    case kDLCPU: case kDLCUDAHost: device = Device(); break;
    case kDLCUDA: case kDLCUDAManaged: device = Device(DeviceType::CUDA, dl.device.device_id); break;
    default: fail(ErrorKind::Type, "[from_dlpack] unsupported device type ", dl.device.device_type);
  }
  EMBER_CHECK_VALUE(dl.ndim >= 0, "[from_dlpack] negative ndim ", dl.ndim);
  DimVector sizes(dl.shape, dl.shape + dl.ndim);
  DimVector strides = dl.strides ? DimVector(dl.strides, dl.strides + dl.ndim) : contiguous_strides(sizes);
  const int64_t n = numel_of(sizes);
  int64_t extent = n == 0 ? 0 : 1;
  for (int32_t i = 0; i < dl.ndim; ++i) {
    EMBER_CHECK_VALUE(sizes[i] >= 0, "[from_dlpack] negative size in shape ", sizes);
    EMBER_CHECK_VALUE(strides[i] >= 0 || sizes[i] <= 1, "[from_dlpack] negative strides ", strides,
                      " are not supported; copy the tensor first");
    if (strides[i] < 0) strides[i] = 0;
    if (n > 0) extent += (sizes[i] - 1) * strides[i];
  }
  void* data = static_cast<char*>(dl.data) + dl.byte_offset;
  DataPtr ptr(data, managed, deleter, device);
  auto storage = std::make_shared<StorageImpl>(std::move(ptr), static_cast<size_t>(extent * element_size(dtype)));
  return Tensor::make(std::move(storage), std::move(sizes), std::move(strides), 0, dtype);
}

}  // namespace ember
