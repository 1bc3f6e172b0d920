from .has import has
from .acol import AcolBase
from .adl import ADL
from .cutmix import cutmix
from .util import normalize_tensor
from .util import get_attention
