"""The segmentation command-line programs (segment, train_segmenter): ``main(argv) -> exit status``."""
