from .vgg import vgg16
from .resnet import resnet50
from .inception import inception_v3
from .util import remove_layer
from .util import replace_layer
