"""Targets that move with the image: boxes, keypoints and masks.

Every sample's geometric ops compose into one forward matrix (source pixel -> output
pixel, ``params["matrix"]``); its targets go through that same matrix, so they follow
the pixels exactly, whatever the ops, and are a function of (recipe, seed, key) like
the pixels. Colour and pixel ops leave targets alone.

Boxes and keypoints use continuous pixel coordinates, as COCO, torchvision and
Albumentations do: pixel (row i, column j) covers [j, j+1) x [i, i+1), so an image
W pixels wide spans x in [0, W] and the centre of its first pixel is 0.5. The engine's
matrices put pixel centres at integers; :func:`~augsvc.targets.boxes.continuous`
converts between the two.

- :mod:`.types`: one image's targets, before and after.
- :mod:`.boxes`: box formats, moving (corners or ellipse), clipping, visibility.
- :mod:`.keypoints`: moving, visibility, left/right swaps on mirrored samples.
- :mod:`.masks`: nearest-neighbour warp of label maps.
- :mod:`.occlusion`: the rectangles occluding ops filled, when they count against boxes.
- :mod:`.move`: a batch's targets through its samples' matrices.
"""
