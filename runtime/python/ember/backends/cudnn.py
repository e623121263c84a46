"""ember.backends.cudnn: ember runs no cuDNN kernels yet (convolutions come with a later part of issue
12), so is_available() is False and these flags, kept at torch's defaults, currently steer nothing."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version():
    return None
