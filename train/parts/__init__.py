"""Model parts: the stage-two network FGM-CLIP and its pieces (motion encoder, aligners, fusion, context, classifiers, adapters, stream heads)."""
