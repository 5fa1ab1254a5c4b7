from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    MODEL: _ClassVar[Kind]
    PROMPT: _ClassVar[Kind]
    GENERATOR: _ClassVar[Kind]
    SAMPLES: _ClassVar[Kind]
    CONTROL: _ClassVar[Kind]

class TensorLib(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENSOR_LIB_UNSPECIFIED: _ClassVar[TensorLib]
    TORCH: _ClassVar[TensorLib]
    NUMPY: _ClassVar[TensorLib]

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[ErrorCode]
    CORRUPT: _ClassVar[ErrorCode]
    PARTIAL: _ClassVar[ErrorCode]
    OVERSIZED: _ClassVar[ErrorCode]
    UNKNOWN_DESTINATION: _ClassVar[ErrorCode]
    REFUSED: _ClassVar[ErrorCode]
    BAD_HEADER: _ClassVar[ErrorCode]
    INTERNAL: _ClassVar[ErrorCode]
KIND_UNSPECIFIED: Kind
MODEL: Kind
PROMPT: Kind
GENERATOR: Kind
SAMPLES: Kind
CONTROL: Kind
TENSOR_LIB_UNSPECIFIED: TensorLib
TORCH: TensorLib
NUMPY: TensorLib
OK: ErrorCode
CORRUPT: ErrorCode
PARTIAL: ErrorCode
OVERSIZED: ErrorCode
UNKNOWN_DESTINATION: ErrorCode
REFUSED: ErrorCode
BAD_HEADER: ErrorCode
INTERNAL: ErrorCode

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape", "nbytes", "lib")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    NBYTES_FIELD_NUMBER: _ClassVar[int]
    LIB_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    nbytes: int
    lib: TensorLib
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., nbytes: _Optional[int] = ..., lib: _Optional[_Union[TensorLib, str]] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("run_id", "round", "src", "dst", "kind", "tag", "message_id", "tensors", "payload_bytes", "num_chunks", "checksum", "meta")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    NUM_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    round: int
    src: str
    dst: str
    kind: Kind
    tag: str
    message_id: str
    tensors: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    payload_bytes: int
    num_chunks: int
    checksum: int
    meta: _containers.ScalarMap[str, str]
    def __init__(self, run_id: _Optional[str] = ..., round: _Optional[int] = ..., src: _Optional[str] = ..., dst: _Optional[str] = ..., kind: _Optional[_Union[Kind, str]] = ..., tag: _Optional[str] = ..., message_id: _Optional[str] = ..., tensors: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., payload_bytes: _Optional[int] = ..., num_chunks: _Optional[int] = ..., checksum: _Optional[int] = ..., meta: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: Header
    chunk: bytes
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("ok", "message_id", "frames", "wire_bytes", "code", "error")
    OK_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    message_id: str
    frames: int
    wire_bytes: int
    code: ErrorCode
    error: str
    def __init__(self, ok: _Optional[bool] = ..., message_id: _Optional[str] = ..., frames: _Optional[int] = ..., wire_bytes: _Optional[int] = ..., code: _Optional[_Union[ErrorCode, str]] = ..., error: _Optional[str] = ...) -> None: ...
